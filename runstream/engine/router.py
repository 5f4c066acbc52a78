"""``Router``: run the step or steps a selector picks among fixed choices."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from runstream import events as ev
from runstream.engine.composite import as_steps, combine, decide, emit_completed, emit_started
from runstream.engine.context import RunContext, StepScope
from runstream.engine.gates import (
    RunRejected,
    gate_before,
    max_retries_reached,
    pause,
    rejected_message,
    rejection,
    requirement,
    skip,
)
from runstream.engine.hitl import HumanReview, OnReject, PauseKind
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
        self,
        selector: Selector | None = None,
        choices: Sequence[Any] = (),
        name: str | None = None,
        description: str | None = None,
        human_review: HumanReview | None = None,
    ) -> None:
        if selector is None and not (human_review is not None and human_review.requires_user_input):
            raise ValueError("a Router needs a selector, or human_review=HumanReview(requires_user_input=True)")
        if not choices:
            raise ValueError("a Router needs at least one choice")
        self.selector = selector
        self.human_review = human_review
        """``requires_user_input``: a person picks the route (``RouterPaused``);
        ``requires_confirmation``: a person confirms before the selector runs."""
        self.originals = list(choices)
        self.choices = as_steps(self.originals)
        self.name = name or "Router"
        self.description = description

    async def execute(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        gate = await gate_before(ctx, scope, self.human_review, "Router", step_input)
        if gate.rejected is not None:
            return await skip(ctx, scope, ev.ROUTER_EXECUTION_COMPLETED, step_input, self.name, "rejected")
        step_input = gate.step_input
        started = ctx.started_steps.get(scope.path)
        if started is not None and "selected_steps" in started:  # decided before a pause or a restart
            picked = self._indices(started["selected_steps"])
        elif self.human_review is not None and self.human_review.requires_user_input:
            choice = await self._route_chosen(ctx, scope, self.human_review, step_input)
            if choice is None:
                return await skip(ctx, scope, ev.ROUTER_EXECUTION_COMPLETED, step_input, self.name, "rejected")
            picked = self._indices(choice)
        else:
            assert self.selector is not None
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

    async def _route_chosen(
        self, ctx: RunContext, scope: StepScope, review: HumanReview, step_input: StepInput
    ) -> list[str] | None:
        """The route a person picked (logged), or pause with ``RouterPaused`` to ask; None when
        the person declined to pick and ``on_reject`` says skip."""
        answers = ctx.answers(scope.path, frozenset({PauseKind.ROUTE}))
        for count, answer in enumerate(answers):
            if not answer.rejected:
                return answer.selected_choices
            action = rejection(review, answer)
            if action is OnReject.CANCEL:
                raise RunRejected(rejected_message(self.name))
            if action is not OnReject.RETRY:
                return None
            if count + 1 > review.max_retries:
                raise max_retries_reached(review, self.name)
        names = [step.name for step in self.choices]
        message = review.user_input_message or f"Select a route from: {', '.join(names)}"
        req = requirement(
            ctx, scope, review, PauseKind.ROUTE, len(answers), "Router",
            requires_route_selection=True, available_choices=names,
            allow_multiple_selections=review.allow_multiple_selections, user_input_message=message,
        )
        await pause(
            ctx, scope, req, ev.ROUTER_PAUSED, available_choices=names, user_input_message=message,
            allow_multiple_selections=review.allow_multiple_selections,
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
