"""``Router``: run the step or steps a selector picks among fixed choices."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from runstream import events as ev
from runstream.engine.composite import as_steps, combine, decide, emit_completed, emit_started
from runstream.engine.context import RunContext, StepScope
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.step import StepBase, run_sequence

__all__ = ["Router", "Selector"]

Selector = Callable[[StepInput], Any | Awaitable[Any]]


class Router(StepBase):
    """``Router(pick, choices=[web_search, paper_search])``.

    ``selector`` (sync or async) gets the ``StepInput`` and returns one choice
    or a list of them (the step objects or functions given in ``choices``, or
    their names); they run in that order. Picking only among the choices
    keeps a run's paths stable, so a resumed run can never take one choice's
    output for another's. ``RouterExecutionStarted`` and
    ``RouterExecutionCompleted`` carry ``selected_steps`` (names).
    """

    def __init__(
        self, selector: Selector, choices: Sequence[Any], name: str | None = None, description: str | None = None
    ) -> None:
        self.selector = selector
        self.originals = list(choices)
        self.choices = as_steps(self.originals)
        self.name = name or "Router"
        self.description = description

    async def execute(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        done = ctx.completed_steps.get(scope.path)
        if done is not None:
            return done
        picked = self._indices(await decide(self.selector, step_input))
        names = [self.choices[k].name for k in picked]
        await emit_started(ctx, scope, ev.ROUTER_EXECUTION_STARTED, selected_steps=names)
        outputs, _ = await run_sequence(
            [self.choices[k] for k in picked], step_input, ctx, lambda step, j: scope.child(step.name, j, f"c{picked[j]}")
        )
        output = combine(self.name, outputs, passthrough=step_input.previous_step_content)
        return await emit_completed(
            ctx, scope, ev.ROUTER_EXECUTION_COMPLETED, output, selected_steps=names, executed_steps=len(outputs)
        )

    def _indices(self, selection: Any) -> list[int]:
        """The choices' positions, in the selector's order; anything else is a definition error."""
        items = selection if isinstance(selection, (list, tuple)) else [] if selection is None else [selection]
        picked = [self._index(item) for item in items]
        if len(set(picked)) != len(picked):
            raise ValueError(f"Router '{self.name}' selector picked a step twice: {[self.choices[k].name for k in picked]}")
        return picked

    def _index(self, item: Any) -> int:
        for k, (original, step) in enumerate(zip(self.originals, self.choices)):
            if item is original or item is step or (isinstance(item, str) and item == step.name):
                return k
        raise ValueError(
            f"Router '{self.name}' selector returned {item!r}, which is not one of its choices "
            f"({', '.join(s.name for s in self.choices)})"
        )
