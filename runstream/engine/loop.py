"""``Loop``: run steps again and again until an end condition or a maximum."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from runstream import events as ev
from runstream.engine.composite import as_steps, combine, decide, emit_completed, emit_started
from runstream.engine.context import RunContext, StepScope
from runstream.engine.gates import RunRejected, gate_before, pause, rejected_message, rejection, requirement, skip
from runstream.engine.gates import with_feedback
from runstream.engine.hitl import HumanReview, OnReject, PauseKind
from runstream.engine.serialize import to_jsonable
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
        human_review: HumanReview | None = None,
    ) -> None:
        if max_iterations < 1:
            raise ValueError("a Loop's max_iterations must be at least 1")
        self.steps = as_steps(steps)
        self.end_condition = end_condition
        self.max_iterations = max_iterations
        self.name = name or "Loop"
        self.description = description
        self.human_review = human_review
        """A confirmation before the loop, and/or ``requires_iteration_review``: after each
        iteration a person approves (the loop ends) or rejects it (the next iteration runs,
        with the feedback)."""

    async def execute(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        gate = await gate_before(ctx, scope, self.human_review, "Loop", step_input)
        if gate.rejected is not None:
            return await skip(ctx, scope, ev.LOOP_EXECUTION_COMPLETED, step_input, self.name, "rejected")
        step_input = gate.step_input
        await emit_started(ctx, scope, ev.LOOP_EXECUTION_STARTED, max_iterations=self.max_iterations)
        outputs: list[StepOutput] = []
        iteration = 0
        while iteration < self.max_iterations:
            iteration += 1
            round_outputs, step_input = await self._iteration(iteration, step_input, ctx, scope)
            outputs.extend(round_outputs)
            if any(o.stop for o in round_outputs):
                break
            review = self.human_review
            if review is not None and review.requires_iteration_review:
                approved, step_input = await self._reviewed(iteration, round_outputs, step_input, ctx, scope, review)
                if approved:
                    break
            elif await self._should_end(round_outputs):
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

    async def _reviewed(
        self, n: int, outputs: list[StepOutput], step_input: StepInput, ctx: RunContext, scope: StepScope,
        review: HumanReview,
    ) -> tuple[bool, StepInput]:
        """Iteration ``n``'s review: the logged answer (approved, or rejected: the next
        iteration gets the feedback), or pause with ``StepOutputReview`` to ask."""
        path = f"{scope.path}.i{n}"
        content = to_jsonable(outputs[-1].content) if outputs else None
        answers = ctx.answers(path, frozenset({PauseKind.ITERATION_REVIEW}))
        if answers:
            answer = answers[-1]
            if not answer.rejected:
                return True, step_input
            if rejection(review, answer, "Loop") is OnReject.CANCEL:
                raise RunRejected(rejected_message(self.name))
            return False, with_feedback(step_input, answer.rejection_feedback, answer.reviewed_output)
        message = review.iteration_review_message or f"Review iteration {n} of loop '{self.name}'?"
        req = requirement(
            ctx, scope, review, PauseKind.ITERATION_REVIEW, 0, "Loop", path=path,
            requires_confirmation=True, requires_output_review=True, is_post_execution=True,
            output_review_message=message, step_output=content,
        )
        await pause(
            ctx, scope, req, ev.STEP_OUTPUT_REVIEW, requires_output_review=True, output_review_message=message,
            step_output=content, iteration=n,
        )

    async def _should_end(self, outputs: list[StepOutput]) -> bool:
        return self.end_condition is not None and bool(await decide(self.end_condition, outputs))
