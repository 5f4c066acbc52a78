"""A part's completion record: what its completion event carries, written and read in one place.

Every completion event (``COMPLETION_EVENTS``: ``StepCompleted``, ``LoopIterationCompleted``,
the composites' ``*ExecutionCompleted``) carries ``step_path``, ``content``, ``success``,
``error`` and ``stop``: all a resumed run needs to rebuild that part's output.
``completion_fields`` is the one writer (the engine's), ``completed_output`` the one reader
(crash recovery's fold). The recorded log in ``tests/fixtures/every_kind_run.json`` pins both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runstream.engine.context import StepScope
from runstream.engine.io import StepOutput
from runstream.engine.serialize import to_jsonable

__all__ = ["completed_output", "completion_fields"]


def completion_fields(scope: StepScope, output: StepOutput, path: str | None = None, **fields: Any) -> dict[str, Any]:
    """The fields of the completion event that closes the part at ``path`` (default: the
    scope's) with ``output``; ``fields`` are the event's own (``executed_steps``, ...)."""
    return {
        **scope.fields(),
        "step_path": path or scope.path,
        "content": to_jsonable(output.content),
        "success": output.success,
        "error": output.error,
        "stop": output.stop,
        **fields,
    }


def completed_output(fields: Mapping[str, Any]) -> StepOutput:
    """The output a logged completion event stands for (its children are linked by the caller)."""
    return StepOutput(
        content=fields.get("content"),
        step_name=fields.get("step_name"),
        success=fields.get("success", True),
        error=fields.get("error"),
        stop=fields.get("stop", False),
    )
