"""A workflow: an id, a name and steps; running it turns the definition into events."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from runstream import events as ev
from runstream.engine.context import RunContext
from runstream.engine.gates import RunPaused, RunRejected, paused_fields
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.serialize import to_jsonable
from runstream.engine.step import StepBase, as_step, describe_error, run_sequence
from runstream.errors import InvalidInput
from runstream.tracing import span

__all__ = ["Workflow"]


class Workflow:
    """``Workflow(id, name, description, steps=[...])``.

    ``run`` ends with exactly one terminal event, ``WorkflowCompleted`` or
    ``WorkflowError`` (a step raised or failed), or pauses for a person with
    ``WorkflowPaused`` (a continue runs it again, resumed), unless it is cancelled: the
    caller knows why (a request ends the run with ``WorkflowCancelled``, a
    shutdown leaves it to be resumed), so it emits what follows.
    """

    def __init__(
        self,
        name: str,
        steps: Sequence[Any],
        id: str | None = None,
        description: str | None = None,
        input_schema: type[BaseModel] | None = None,
    ) -> None:
        self.name = name
        self.id = id or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.description = description
        self.steps: list[StepBase] = [as_step(s) for s in steps]
        self.input_schema = input_schema

    def validate_input(self, message: Any) -> Any:
        """Check a run's input against ``input_schema``; raise ``InvalidInput`` on mismatch."""
        if self.input_schema is None:
            return message
        try:
            if isinstance(message, str):
                return self.input_schema.model_validate_json(message)
            return self.input_schema.model_validate(message)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidInput(f"Input does not match {self.input_schema.__name__}: {problems}") from None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "steps": [{"name": s.name, "type": type(s).__name__} for s in self.steps],
            "input_schema": self.input_schema.model_json_schema() if self.input_schema else None,
        }

    async def run(
        self, ctx: RunContext, message: Any, additional_data: dict[str, Any] | None = None, resumed: bool = False
    ) -> None:
        """Execute the steps, emitting every event of the run through ``ctx.emit``.
        A ``resumed`` run already announced itself; its completed steps are not run again."""
        started = time.perf_counter()
        if not resumed:
            await ctx.emit(ev.WORKFLOW_STARTED, {"input": to_jsonable(message)})
        step_input = StepInput(
            input=message, additional_data=additional_data or {}, session_state=ctx.session_state
        )
        try:
            with span(f"run {self.id}", {"runstream.run_id": ctx.run_id, "runstream.workflow_id": self.id,
                                         "runstream.session_id": ctx.session_id, "runstream.resumed": resumed}):
                outputs, _ = await run_sequence(
                    self.steps, step_input, ctx, lambda step, i: ctx.top_scope(step.name, i)
                )
        except RunPaused as paused:  # waits for a person: this leg of the run ends here
            await ctx.emit(ev.WORKFLOW_PAUSED, paused_fields(paused.requirement, ctx.answered))
            return
        except RunRejected as rejected:
            reason = str(rejected)
            await ctx.emit(
                ev.WORKFLOW_CANCELLED, {"reason": reason, "content": reason, "cancellation_stage": "PAUSED"}
            )
            return
        except Exception as exc:  # a step's failure ends the run, never the server
            await ctx.emit(ev.WORKFLOW_ERROR, {"error": describe_error(exc), "error_type": type(exc).__name__})
            return
        final = outputs[-1] if outputs else StepOutput()
        await ctx.emit(
            ev.WORKFLOW_COMPLETED,
            {"content": to_jsonable(final.content), "stopped_early": final.stop, "metrics": self._metrics(ctx, started)},
        )

    @staticmethod
    def _metrics(ctx: RunContext, started: float) -> dict[str, Any]:
        """AgentOS's ``WorkflowMetrics`` (``steps`` by step name, ``duration`` in seconds), plus
        the run's token totals at the top level."""
        return {**ctx.metrics, "steps": ctx.step_metrics, "duration": round(time.perf_counter() - started, 6)}

