"""One exception tree for runstream; errors that reach a client carry a stable ``code``."""

from __future__ import annotations

__all__ = [
    "RunstreamError",
    "ProtocolError",
    "UnknownWorkflow",
    "UnknownRun",
    "InvalidInput",
    "RunNotActive",
    "LogWriteFailed",
    "ShuttingDown",
    "StepFailed",
    "ModelError",
]


class RunstreamError(Exception):
    """Base of every error runstream raises on purpose."""

    code = "runstream_error"


class ProtocolError(RunstreamError):
    """A client frame or request that does not follow the protocol."""

    code = "protocol_error"


class UnknownWorkflow(RunstreamError):
    code = "unknown_workflow"

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"Workflow {workflow_id} not found")
        self.workflow_id = workflow_id


class UnknownRun(RunstreamError):
    code = "unknown_run"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"Run {run_id} not found")
        self.run_id = run_id


class InvalidInput(RunstreamError):
    """The run's input does not match the workflow's input schema."""

    code = "invalid_input"


class RunNotActive(RunstreamError):
    """The action needs a running run (cancel), and this one has ended."""

    code = "run_not_active"


class LogWriteFailed(RunstreamError):
    """A run's events could not be written to the log; the run stops here and is left to recovery."""

    code = "log_write_failed"


class ShuttingDown(RunstreamError):
    """The server is stopping and takes no new runs; its running runs resume at its next start."""

    code = "shutting_down"


class StepFailed(RunstreamError):
    """A step failed for good (it timed out or raised on its last try); the run ends with ``WorkflowError``."""

    code = "step_failed"


class ModelError(RunstreamError):
    """A model provider refused or broke a request (auth, unknown model, cut stream)."""

    code = "model_error"
