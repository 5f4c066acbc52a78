"""``Condition``: run one branch or the other, decided at run time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from runstream import events as ev
from runstream.engine.composite import as_steps, combine, decide, emit_completed, emit_started
from runstream.engine.context import RunContext, StepScope
from runstream.engine.gates import gate_before, skip
from runstream.engine.hitl import HumanReview, OnReject
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.step import StepBase, run_sequence

__all__ = ["Condition", "Evaluator"]

Evaluator = bool | Callable[[StepInput], bool | Awaitable[bool]]


class Condition(StepBase):
    """``Condition(is_technical, [deep_dive], else_steps=[summary])``.

    ``evaluator`` is a bool or a function (sync or async) of the ``StepInput``.
    Both ``ConditionExecutionStarted`` and ``ConditionExecutionCompleted``
    carry ``condition_result``. With a false result and no ``else_steps``
    nothing runs and the previous content passes through.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        steps: Any,
        else_steps: Any = None,
        name: str | None = None,
        description: str | None = None,
        human_review: HumanReview | None = None,
    ) -> None:
        self.human_review = human_review
        """A confirmation before the condition; a rejection takes the else branch by default."""
        self.evaluator = evaluator
        self.steps = as_steps(steps)
        self.else_steps = as_steps(else_steps) if else_steps is not None else []
        self.name = name or "Condition"
        self.description = description

    async def execute(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        gate = await gate_before(ctx, scope, self.human_review, "Condition", step_input)
        step_input = gate.step_input
        result = _branch_taken(ctx, scope)
        if gate.rejected is OnReject.ELSE:
            result = False
        elif gate.rejected is not None:
            return await skip(ctx, scope, ev.CONDITION_EXECUTION_COMPLETED, step_input, self.name, "rejected")
        if result is None:
            result = await self._evaluate(step_input)
        await emit_started(ctx, scope, ev.CONDITION_EXECUTION_STARTED, condition_result=result)
        branch, mark = (self.steps, "t") if result else (self.else_steps, "e")
        outputs, _ = await run_sequence(branch, step_input, ctx, lambda step, j: scope.child(step.name, j, f"{mark}{j}"))
        output = combine(self.name, outputs, passthrough=step_input.previous_step_content)
        return await emit_completed(
            ctx, scope, ev.CONDITION_EXECUTION_COMPLETED, output, condition_result=result, executed_steps=len(outputs)
        )

    async def _evaluate(self, step_input: StepInput) -> bool:
        if isinstance(self.evaluator, bool):
            return self.evaluator
        return bool(await decide(self.evaluator, step_input))


def _branch_taken(ctx: RunContext, scope: StepScope) -> bool | None:
    """The branch a resumed or continued run had entered, so it is not re-decided."""
    started = ctx.started_steps.get(scope.path)
    if started is not None and "condition_result" in started:
        return bool(started["condition_result"])
    for done in ctx.completed_steps:
        if done.startswith(f"{scope.path}.t"):
            return True
        if done.startswith(f"{scope.path}.e"):
            return False
    return None
