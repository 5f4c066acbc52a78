"""``Steps``: a named group of steps that run in sequence, as one step."""

from __future__ import annotations

from typing import Any

from runstream import events as ev
from runstream.engine.composite import as_steps, combine, emit_completed, emit_started
from runstream.engine.context import RunContext, StepScope
from runstream.engine.gates import gate_before, skip
from runstream.engine.hitl import HumanReview
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.step import StepBase, run_sequence

__all__ = ["Steps"]


class Steps(StepBase):
    """``Steps("Research", [search, summarize])``: reuse and nest a sequence under one name.

    Emits ``StepsExecutionStarted``, its children's events, then
    ``StepsExecutionCompleted`` (content: the last child's).
    """

    def __init__(
        self, name: str, steps: Any, description: str | None = None, human_review: HumanReview | None = None
    ) -> None:
        self.name = name
        self.steps = as_steps(steps)
        self.description = description
        self.human_review = human_review

    async def execute(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        gate = await gate_before(ctx, scope, self.human_review, "Steps", step_input)
        if gate.rejected is not None:
            return await skip(ctx, scope, ev.STEPS_EXECUTION_COMPLETED, step_input, self.name, "rejected")
        step_input = gate.step_input
        await emit_started(ctx, scope, ev.STEPS_EXECUTION_STARTED, steps_count=len(self.steps))
        outputs, _ = await run_sequence(self.steps, step_input, ctx, lambda step, j: scope.child(step.name, j))
        output = combine(self.name, outputs, passthrough=step_input.previous_step_content)
        return await emit_completed(ctx, scope, ev.STEPS_EXECUTION_COMPLETED, output, executed_steps=len(outputs))
