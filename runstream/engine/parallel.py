"""``Parallel``: steps that run concurrently, each on the same input."""

from __future__ import annotations

import asyncio
from typing import Any

from runstream import events as ev
from runstream.engine.composite import as_steps, combine, emit_completed, emit_started
from runstream.engine.context import RunContext, StepScope
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.step import StepBase, has_human_review, run_step

__all__ = ["Parallel"]


class Parallel(StepBase):
    """``Parallel(search_web, search_papers, name="Search")``.

    The children's events interleave; each carries its ``step_name``,
    ``step_id`` and ``parent_step_id`` (this step's id). The output's content
    is ``{child name: child content}``. If a child raises, the others are
    cancelled and the run fails with that child's error.
    """

    def __init__(self, *steps: Any, name: str | None = None, description: str | None = None) -> None:
        self.steps = as_steps(list(steps))
        if any(has_human_review(step) for step in self.steps):
            raise ValueError("a Parallel cannot hold steps that pause for a person (human_review or @pause)")
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"the steps of a Parallel need distinct names, got {names}")
        self.name = name or "Parallel"
        self.description = description

    async def execute(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        count = len(self.steps)
        await emit_started(ctx, scope, ev.PARALLEL_EXECUTION_STARTED, parallel_step_count=count)
        outputs = await self._run_all(step_input, ctx, scope)
        output = combine(self.name, outputs, content={o.step_name: o.content for o in outputs})
        return await emit_completed(ctx, scope, ev.PARALLEL_EXECUTION_COMPLETED, output, parallel_step_count=count)

    async def _run_all(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> list[StepOutput]:
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(run_step(step, step_input, ctx, scope.child(step.name, j)))
                    for j, step in enumerate(self.steps)
                ]
        except ExceptionGroup as failed:  # report the child's own error, not the group
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]
