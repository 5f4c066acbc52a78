"""``Router``: run the step or steps a selector picks among fixed choices."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

from runstream import events as ev
from runstream.engine.composite import as_steps, combine, decide, emit_completed, emit_started
from runstream.engine.context import RunContext, StepScope
from runstream.engine.gates import (
    RunRejected,
    gate_before,
    input_dict,
    max_retries_reached,
    pause,
    rejected_message,
    rejection,
    requirement,
    skip,
    with_feedback,
)
from runstream.engine.hitl import HumanReview, OnReject, PauseKind
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.serialize import to_jsonable
from runstream.engine.step import StepBase, run_sequence

__all__ = ["Router", "Selector"]

Selector = Callable[[StepInput], Any | Awaitable[Any]]

_REVIEW = frozenset({PauseKind.OUTPUT_REVIEW})


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
        if human_review is not None and human_review.requires_iteration_review:
            raise ValueError(
                "requires_iteration_review is not supported on Router. "
                "Supported: requires_confirmation, requires_user_input, requires_output_review."
            )
        self.selector = selector
        self.human_review = human_review
        """``requires_user_input``: a person picks the route (``RouterPaused``);
        ``requires_confirmation``: a person confirms before the selector runs;
        ``requires_output_review``: a person reviews the chosen routes' output
        (``StepOutputReview``); a ``retry`` rejection asks for a route again, and the
        routes picked then run anew (their paths are ``<path>.r<n>.c<k>``)."""
        self.originals = list(choices)
        self.choices = as_steps(self.originals)
        self.name = name or "Router"
        self.description = description

    async def execute(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        gate = await gate_before(ctx, scope, self.human_review, "Router", step_input)
        if gate.rejected is not None:
            return await skip(ctx, scope, ev.ROUTER_EXECUTION_COMPLETED, step_input, self.name, "rejected")
        step_input = gate.step_input
        review = self.human_review
        reviews = ctx.answers(scope.path, _REVIEW) if review is not None else []
        attempt, attempt_input = 0, step_input
        while True:
            path = scope.path if attempt == 0 else f"{scope.path}.r{attempt}"
            picked = await self._picked(ctx, scope, path, attempt_input, attempt)
            if picked is None:
                return await skip(ctx, scope, ev.ROUTER_EXECUTION_COMPLETED, step_input, self.name, "rejected")
            names = [self.choices[k].name for k in picked]
            await emit_started(ctx, scope, ev.ROUTER_EXECUTION_STARTED, path, selected_steps=names)
            prefix = "" if attempt == 0 else f"r{attempt}."
            outputs, _ = await run_sequence(
                [self.choices[k] for k in picked], attempt_input, ctx,
                lambda step, j: scope.child(step.name, j, f"{prefix}c{picked[j]}"),
            )
            output = combine(self.name, outputs, passthrough=step_input.previous_step_content)
            if review is None or output.stop or not review.wants_output_review(output):
                break
            if attempt == len(reviews):
                await self._ask_review(ctx, scope, review, output, names, attempt, attempt_input)
            answer = reviews[attempt]
            if not answer.rejected:
                if answer.edited_output is not None:
                    output.content = answer.edited_output
                break
            action = rejection(review, answer, "Router")
            if action is OnReject.CANCEL:
                raise RunRejected(rejected_message(self.name))
            if action is not OnReject.RETRY:  # the reviewed output is dropped
                return await skip(ctx, scope, ev.ROUTER_EXECUTION_COMPLETED, step_input, self.name, "rejected")
            if attempt + 1 > review.max_retries:
                raise max_retries_reached(review, self.name)
            attempt += 1
            attempt_input = with_feedback(step_input, answer.rejection_feedback, answer.reviewed_output)
        return await emit_completed(
            ctx, scope, ev.ROUTER_EXECUTION_COMPLETED, output, selected_steps=names, executed_steps=len(outputs)
        )

    async def _picked(
        self, ctx: RunContext, scope: StepScope, path: str, step_input: StepInput, attempt: int
    ) -> list[int] | None:
        """The routes of attempt ``attempt`` (logged when decided before a pause or a restart):
        the selector's, or a person's (always after a rejected review, as AgentOS asks); None
        when the person declined to pick and ``on_reject`` says skip."""
        started = ctx.started_steps.get(path)
        if started is not None and "selected_steps" in started:
            return self._indices(started["selected_steps"])
        review = self.human_review
        if review is not None and (attempt > 0 or review.requires_user_input):
            choice = await self._route_chosen(ctx, scope, review, step_input, path, attempt)
            return None if choice is None else self._indices(choice)
        assert self.selector is not None
        return self._indices(await decide(self.selector, step_input))

    async def _route_chosen(
        self, ctx: RunContext, scope: StepScope, review: HumanReview, step_input: StepInput, path: str, attempt: int
    ) -> list[str] | None:
        """The route a person picked (logged), or pause with ``RouterPaused`` to ask; None when
        the person declined to pick and ``on_reject`` says skip. After a rejected review
        (``attempt`` > 0) the pause carries its ``retry_count`` and ``rejection_feedback``."""
        answers = ctx.answers(path, frozenset({PauseKind.ROUTE}))
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
        retried: dict[str, Any] = {}
        if attempt > 0:
            retried = {"retry_count": attempt, "rejection_feedback": step_input.additional_data.get("rejection_feedback")}
        schema = [f.to_dict() for f in review.schema] or None
        req = requirement(
            ctx, scope, review, PauseKind.ROUTE, len(answers), "Router", path=path,
            retry_count=attempt + len(answers), rejection_feedback=retried.get("rejection_feedback"),
            requires_route_selection=True, available_choices=names, user_input_schema=schema,
            allow_multiple_selections=review.allow_multiple_selections, user_input_message=message,
            step_input=input_dict(step_input),
        )
        await pause(
            ctx, scope, req, ev.ROUTER_PAUSED, available_choices=names, user_input_message=message,
            allow_multiple_selections=review.allow_multiple_selections, **retried,
        )

    async def _ask_review(
        self, ctx: RunContext, scope: StepScope, review: HumanReview, output: StepOutput, names: list[str],
        attempt: int, step_input: StepInput,
    ) -> NoReturn:
        """Pause with ``StepOutputReview`` after the chosen routes ran: approve (or edit) the
        output, or reject it (``retry``: a person picks a route again)."""
        content = to_jsonable(output.content)
        message = review.output_review_message or f"Review output of router '{self.name}'?"
        req = requirement(
            ctx, scope, review, PauseKind.OUTPUT_REVIEW, attempt, "Router",
            requires_confirmation=True, confirmation_message=message, requires_output_review=True,
            is_post_execution=True, output_review_message=message, step_output=content,
            available_choices=[step.name for step in self.choices],
            rejection_feedback=step_input.additional_data.get("rejection_feedback") if attempt else None,
        )
        await pause(
            ctx, scope, req, ev.STEP_OUTPUT_REVIEW, requires_output_review=True, output_review_message=message,
            step_output=content, selected_steps=names,
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
