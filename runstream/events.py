"""Event names and the two wire framings of a run event.

A run event travels as the JSON text it was serialized to once, when it was
appended to the log; transports only wrap that text in a frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "StoredEvent",
    "TERMINAL_EVENTS",
    "ws_frame",
    "sse_frame",
    "WORKFLOW_STARTED",
    "WORKFLOW_COMPLETED",
    "WORKFLOW_ERROR",
    "WORKFLOW_CANCELLED",
    "WORKFLOW_RESUMED",
    "WORKFLOW_PAUSED",
    "WORKFLOW_QUEUED",
    "STEP_STARTED",
    "STEP_OUTPUT",
    "STEP_COMPLETED",
    "RUN_STARTED",
    "RUN_CONTENT",
    "RUN_COMPLETED",
    "TOOL_CALL_STARTED",
    "TOOL_CALL_COMPLETED",
    "STEP_RETRY",
    "PARALLEL_EXECUTION_STARTED",
    "PARALLEL_EXECUTION_COMPLETED",
    "CONDITION_EXECUTION_STARTED",
    "CONDITION_EXECUTION_COMPLETED",
    "LOOP_EXECUTION_STARTED",
    "LOOP_ITERATION_STARTED",
    "LOOP_ITERATION_COMPLETED",
    "LOOP_EXECUTION_COMPLETED",
    "ROUTER_EXECUTION_STARTED",
    "ROUTER_EXECUTION_COMPLETED",
    "STEPS_EXECUTION_STARTED",
    "STEPS_EXECUTION_COMPLETED",
    "COMPLETION_EVENTS",
    "START_EVENTS",
    "STEP_PAUSED",
    "ROUTER_PAUSED",
    "STEP_OUTPUT_REVIEW",
    "STEP_ERROR",
    "STEP_EXECUTOR_PAUSED",
    "WORKFLOW_PAUSED",
    "STEP_CONTINUED",
    "STEP_EXECUTOR_CONTINUED",
    "LEG_END_EVENTS",
]

WORKFLOW_STARTED = "WorkflowStarted"
WORKFLOW_COMPLETED = "WorkflowCompleted"
WORKFLOW_ERROR = "WorkflowError"
WORKFLOW_CANCELLED = "WorkflowCancelled"
WORKFLOW_RESUMED = "WorkflowResumed"
WORKFLOW_PAUSED = "WorkflowPaused"
"""Ends a run's task without ending the run: it waits for a person (status ``paused``)."""
WORKFLOW_QUEUED = "WorkflowQueued"
"""A run's first event while every slot of the replica is taken (status ``queued``): it holds
the request (``input``, ``additional_data``), which the replica that starts it reads back."""
STEP_STARTED = "StepStarted"
STEP_OUTPUT = "StepOutput"
STEP_COMPLETED = "StepCompleted"
RUN_STARTED = "RunStarted"
RUN_CONTENT = "RunContent"
RUN_COMPLETED = "RunCompleted"
TOOL_CALL_STARTED = "ToolCallStarted"
TOOL_CALL_COMPLETED = "ToolCallCompleted"
STEP_RETRY = "StepRetry"
PARALLEL_EXECUTION_STARTED = "ParallelExecutionStarted"
PARALLEL_EXECUTION_COMPLETED = "ParallelExecutionCompleted"
CONDITION_EXECUTION_STARTED = "ConditionExecutionStarted"
CONDITION_EXECUTION_COMPLETED = "ConditionExecutionCompleted"
LOOP_EXECUTION_STARTED = "LoopExecutionStarted"
LOOP_ITERATION_STARTED = "LoopIterationStarted"
LOOP_ITERATION_COMPLETED = "LoopIterationCompleted"
LOOP_EXECUTION_COMPLETED = "LoopExecutionCompleted"
ROUTER_EXECUTION_STARTED = "RouterExecutionStarted"
ROUTER_EXECUTION_COMPLETED = "RouterExecutionCompleted"
STEPS_EXECUTION_STARTED = "StepsExecutionStarted"
STEPS_EXECUTION_COMPLETED = "StepsExecutionCompleted"
STEP_PAUSED = "StepPaused"
ROUTER_PAUSED = "RouterPaused"
STEP_OUTPUT_REVIEW = "StepOutputReview"
STEP_ERROR = "StepError"
STEP_EXECUTOR_PAUSED = "StepExecutorPaused"
WORKFLOW_PAUSED = "WorkflowPaused"
"""Ends a leg of the run: it waits for a person (``step_requirements``), holding nothing
but its log; a continue appends ``StepContinued`` and the run goes on."""
STEP_CONTINUED = "StepContinued"
STEP_EXECUTOR_CONTINUED = "StepExecutorContinued"

COMPLETION_EVENTS = frozenset(
    {
        STEP_COMPLETED,
        PARALLEL_EXECUTION_COMPLETED,
        CONDITION_EXECUTION_COMPLETED,
        LOOP_ITERATION_COMPLETED,
        LOOP_EXECUTION_COMPLETED,
        ROUTER_EXECUTION_COMPLETED,
        STEPS_EXECUTION_COMPLETED,
    }
)
"""Events that close a part of a run; each carries ``step_path``, ``content``,
``success``, ``error`` and ``stop`` (``engine/completion.py``), so a resumed run can
rebuild ``RunContext.completed_steps``."""

START_EVENTS = frozenset(
    {
        STEP_STARTED,
        PARALLEL_EXECUTION_STARTED,
        CONDITION_EXECUTION_STARTED,
        LOOP_ITERATION_STARTED,
        LOOP_EXECUTION_STARTED,
        ROUTER_EXECUTION_STARTED,
        STEPS_EXECUTION_STARTED,
    }
)
"""Events that open a part of a run (each carries its ``step_path``; a ``StepStarted``
also ``rerunnable``): one without its completion was interrupted."""

TERMINAL_EVENTS = frozenset({WORKFLOW_COMPLETED, WORKFLOW_ERROR, WORKFLOW_CANCELLED})
LEG_END_EVENTS = TERMINAL_EVENTS | {WORKFLOW_PAUSED}
"""Where a stream that ends with the run's current leg (an HTTP request's) stops."""


@dataclass(slots=True)
class StoredEvent:
    """One event of a run's log: its index, its name and its JSON text."""

    index: int
    name: str
    data: str
    wire: bytes | None = field(default=None, compare=False, repr=False)
    """The event as a WebSocket frame, kept by the first connection that sends it: a live
    event goes to every subscriber, and the others then send these bytes as they are."""

    @property
    def terminal(self) -> bool:
        return self.name in TERMINAL_EVENTS

    @property
    def ends_leg(self) -> bool:
        return self.name in LEG_END_EVENTS


def ws_frame(event: StoredEvent) -> str:
    """The WebSocket framing AgentOS clients parse: SSE text in one frame."""
    return f"event: {event.name}\ndata: {event.data}\n\n"


def sse_frame(event: StoredEvent) -> str:
    """An SSE message with ``id:`` so that ``EventSource`` resumes by itself."""
    return f"id: {event.index}\nevent: {event.name}\ndata: {event.data}\n\n"
