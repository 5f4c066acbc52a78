"""``Loop``: run steps again and again until an end condition or a maximum."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from runstream import events as ev
from runstream.engine.composite import as_steps, combine, decide, emit_completed, emit_started
from runstream.engine.context import RunContext, StepScope
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.step import StepBase, run_sequence

__all__ = ["EndCondition", "Loop"]

EndCondition = Callable[[list[StepOutput]], bool | Awaitable[bool]]


class Loop(StepBase):
    """``Loop([draft, review], end_condition=good_enough, max_iterations=5)``.

    After each iteration ``end_condition`` (sync or async) gets that
    iteration's outputs; true ends the loop. Each iteration after the first
    starts from the previous one's last output. Events:
    ``LoopExecutionStarted``, per iteration ``LoopIterationStarted`` and
    ``LoopIterationCompleted`` (``iteration`` counts from 1), then
    ``LoopExecutionCompleted`` (content: the last output's).
    """

    def __init__(
        self,
        steps: Any,
        end_condition: EndCondition | None = None,
        max_iterations: int = 3,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        if max_iterations < 1:
            raise ValueError("a Loop's max_iterations must be at least 1")
        self.steps = as_steps(steps)
        self.end_condition = end_condition
        self.max_iterations = max_iterations
        self.name = name or "Loop"
        self.description = description

    async def execute(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        done = ctx.completed_steps.get(scope.path)
        if done is not None:
            return done
        await emit_started(ctx, scope, ev.LOOP_EXECUTION_STARTED, max_iterations=self.max_iterations)
        outputs: list[StepOutput] = []
        iteration = 0
        while iteration < self.max_iterations:
            iteration += 1
            round_outputs, step_input = await self._iteration(iteration, step_input, ctx, scope)
            outputs.extend(round_outputs)
            if any(o.stop for o in round_outputs) or await self._should_end(round_outputs):
                break
        output = combine(self.name, outputs)
        return await emit_completed(
            ctx, scope, ev.LOOP_EXECUTION_COMPLETED, output, total_iterations=iteration, max_iterations=self.max_iterations
        )

    async def _iteration(
        self, n: int, step_input: StepInput, ctx: RunContext, scope: StepScope
    ) -> tuple[list[StepOutput], StepInput]:
        path = f"{scope.path}.i{n}"
        await emit_started(ctx, scope, ev.LOOP_ITERATION_STARTED, path, iteration=n, max_iterations=self.max_iterations)
        outputs, next_input = await run_sequence(
            self.steps, step_input, ctx, lambda step, j: scope.child(step.name, j, f"i{n}.{j}")
        )
        await emit_completed(
            ctx, scope, ev.LOOP_ITERATION_COMPLETED, combine(None, outputs), path,
            iteration=n, max_iterations=self.max_iterations,
        )
        return outputs, next_input

    async def _should_end(self, outputs: list[StepOutput]) -> bool:
        return self.end_condition is not None and bool(await decide(self.end_condition, outputs))
