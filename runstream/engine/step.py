"""A step: a function or an agent, run once with a ``StepInput``.

Executors may be sync or async functions, or sync or async generators. A
generator streams text chunks (each one a ``RunContent`` event) and ends by
yielding or returning its ``StepOutput``; sync code runs in a worker thread so
it never blocks the event loop.

Policies: ``timeout`` (seconds per attempt; running out is a step failure) and
``max_retries`` (each retry announced by a ``StepRetry`` event). Cancelling the
run cancels an async step where it awaits; a sync step's thread is abandoned.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from runstream import events as ev
from runstream.engine.completion import completion_fields
from runstream.engine.context import RunContext, StepScope
from runstream.engine.gates import (
    RunPaused,
    RunRejected,
    gate_before,
    max_retries_reached,
    pause,
    rejected_message,
    rejection,
    requirement,
    skip,
    with_feedback,
)
from runstream.engine.hitl import HumanReview, OnError, OnReject, PauseKind, review_of
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.serialize import to_jsonable
from runstream.engine.sink import EmitContent
from runstream.engine.threads import WorkerThread, in_thread
from runstream.errors import StepFailed
from runstream.tracing import span

_EXECUTOR = frozenset({PauseKind.EXECUTOR})

__all__ = ["AgentLike", "Step", "StepBase", "as_step", "describe_error", "has_human_review", "run_sequence", "run_step"]

logger = logging.getLogger(__name__)


@runtime_checkable
class AgentLike(Protocol):
    """What a ``Step`` needs of an agent: a name and a run that emits its events."""

    name: str

    async def run(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> Any: ...


class StepBase:
    """Anything that can stand in a workflow's list of steps. ``execute`` runs it; the
    engine calls it through ``run_step``, which skips a part a resumed run already finished."""

    name: str

    async def execute(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        raise NotImplementedError


class Step(StepBase):
    """One unit of work: ``Step(name, executor=fn)`` or ``Step(name, agent=agent)``."""

    def __init__(
        self,
        name: str | None = None,
        executor: Callable[..., Any] | None = None,
        agent: AgentLike | None = None,
        description: str | None = None,
        rerunnable: bool = True,
        timeout: float | None = None,
        max_retries: int = 0,
        human_review: HumanReview | None = None,
    ) -> None:
        if (executor is None) == (agent is None):
            raise ValueError("a Step takes exactly one of executor= or agent=")
        if timeout is not None and timeout <= 0:
            raise ValueError("a Step's timeout must be a positive number of seconds")
        if max_retries < 0:
            raise ValueError("a Step's max_retries must be 0 or more")
        self.executor = executor
        self.agent = agent
        self.name = name or (agent.name if agent is not None else str(getattr(executor, "__name__", "step")))
        self.description = description
        self.rerunnable = rerunnable
        """False when running the step twice would do harm: a run interrupted inside it
        by a crash then ends with ``WorkflowError`` instead of resuming."""
        self.timeout = timeout
        self.max_retries = max_retries
        self.human_review = human_review or review_of(executor)
        """Where a person takes part (``HumanReview``, or ``@pause`` on the executor)."""

    async def execute(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        review = self.human_review
        if review is None:
            if not ctx.answers(scope.path, _EXECUTOR):  # an agent continued after its tool calls has started
                await self._started(ctx, scope)
            with span(f"step {self.name}", {"runstream.run_id": ctx.run_id, "runstream.step_path": scope.path}):
                output = await self._attempts(step_input, ctx, scope)
            return await self._complete(output, ctx, scope)
        gate = await gate_before(ctx, scope, review, "Step", step_input)
        if gate.rejected is not None:
            return await skip(ctx, scope, ev.STEP_COMPLETED, step_input, self.name, "rejected")
        return await self._reviewed(gate.step_input, ctx, scope, review)

    async def _started(self, ctx: RunContext, scope: StepScope, **fields: Any) -> None:
        await ctx.emit(
            ev.STEP_STARTED, {**scope.fields(), "step_path": scope.path, "rerunnable": self.rerunnable, **fields}
        )

    async def _reviewed(
        self, step_input: StepInput, ctx: RunContext, scope: StepScope, review: HumanReview
    ) -> StepOutput:
        """Run with ``on_error`` and output review: replay the logged answers (an approved
        review keeps its stored output, a retry runs only the newest attempt), then run
        the step once and pause again if it failed or its output needs a review."""
        errors = reviews = 0
        feedback: str | None = None
        previous: Any = None
        for answer in ctx.answers(scope.path, frozenset({PauseKind.ERROR, PauseKind.OUTPUT_REVIEW})):
            if answer.kind == PauseKind.ERROR:
                if answer.decision == "skip":
                    return await skip(ctx, scope, ev.STEP_COMPLETED, step_input, self.name, "error")
                errors += 1
                if errors > review.max_retries:
                    raise max_retries_reached(review, self.name)
                continue
            reviews += 1
            if not answer.rejected:
                edited = answer.edited_output
                return await self._complete(
                    StepOutput(content=edited if edited is not None else answer.reviewed_output), ctx, scope
                )
            action = rejection(review, answer)
            if action is OnReject.CANCEL:
                raise RunRejected(rejected_message(self.name))
            if action is not OnReject.RETRY:
                return await skip(ctx, scope, ev.STEP_COMPLETED, step_input, self.name, "rejected")
            if reviews > review.max_retries:
                raise max_retries_reached(review, self.name)
            feedback, previous = answer.rejection_feedback, answer.reviewed_output
        if reviews:
            step_input = with_feedback(step_input, feedback, previous)
        await self._started(ctx, scope, retry_count=reviews + errors)
        try:
            with span(f"step {self.name}", {"runstream.run_id": ctx.run_id, "runstream.step_path": scope.path}):
                output = await self._attempts(step_input, ctx, scope)
        except Exception as exc:
            if review.on_error is OnError.SKIP:
                return await skip(ctx, scope, ev.STEP_COMPLETED, step_input, self.name, "error")
            if review.on_error is not OnError.PAUSE:
                raise
            error, error_type = describe_error(exc), type(exc).__name__
            req = requirement(
                ctx, scope, review, PauseKind.ERROR, errors, "Step", error_message=error, error_type=error_type
            )
            await pause(ctx, scope, req, ev.STEP_ERROR, error=error, error_type=error_type, retry_count=errors)
        if review.wants_output_review(output):
            content = to_jsonable(output.content)
            message = review.output_review_message or f"Review output of step '{self.name}'?"
            req = requirement(
                ctx, scope, review, PauseKind.OUTPUT_REVIEW, reviews, "Step",
                requires_confirmation=True, requires_output_review=True, is_post_execution=True,
                output_review_message=message, step_output=content, rejection_feedback=feedback,
            )
            await pause(
                ctx, scope, req, ev.STEP_OUTPUT_REVIEW,
                requires_output_review=True, output_review_message=message, step_output=content,
            )
        return await self._complete(output, ctx, scope)

    async def _complete(self, output: StepOutput, ctx: RunContext, scope: StepScope) -> StepOutput:
        output.step_name = self.name
        content = to_jsonable(output.content)
        # ``step_output`` is where AgentOS clients read a StepOutput event's content from
        step_output = {"step_name": self.name, "step_id": scope.step_id, "content": content,
                       "success": output.success, "error": output.error, "stop": output.stop}
        await ctx.emit(ev.STEP_OUTPUT, {**scope.fields(), "content": content, "step_output": step_output})
        await ctx.emit(ev.STEP_COMPLETED, completion_fields(scope, output))
        return output

    async def _attempts(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        """Run the step; after a failure, retry up to ``max_retries`` times, then give up."""
        attempt = 1
        while True:
            try:
                return await self._attempt(step_input, ctx, scope)
            except RunPaused:  # waiting for a person is not a failure to retry
                raise
            except Exception as exc:
                if attempt > self.max_retries:
                    logger.error("run %s: step %r failed", ctx.run_id, self.name, exc_info=exc)
                    if self.max_retries:
                        raise StepFailed(f"Step '{self.name}' failed {attempt} times: {describe_error(exc)}") from exc
                    raise
                logger.warning("run %s: step %r failed (try %d of %d); retrying", ctx.run_id, self.name,
                               attempt, self.max_retries + 1, exc_info=exc)
                attempt += 1
                await ctx.emit(
                    ev.STEP_RETRY,
                    {
                        **scope.fields(),
                        "step_path": scope.path,
                        "attempt": attempt,
                        "max_retries": self.max_retries,
                        "error": describe_error(exc),
                        "error_type": type(exc).__name__,
                    },
                )

    async def _attempt(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        if self.timeout is None:
            return await self._produce(step_input, ctx, scope)
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                return await self._produce(step_input, ctx, scope)
        except TimeoutError:
            if not deadline.expired():  # the step's own TimeoutError, not ours
                raise
            raise StepFailed(f"Step '{self.name}' timed out after {self.timeout:g} s") from None

    async def _produce(self, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
        if self.agent is not None:
            return _as_output(await self.agent.run(step_input, ctx, scope))
        fn = self.executor
        assert fn is not None
        if inspect.isasyncgenfunction(fn):
            return await _drain_async(fn(step_input), ctx, scope)
        if inspect.isgeneratorfunction(fn):
            return await _drain_sync(fn(step_input), ctx, scope)
        if inspect.iscoroutinefunction(fn):
            return _as_output(await fn(step_input))
        return _as_output(await in_thread(fn, step_input))


def _chunks(ctx: RunContext, scope: StepScope) -> EmitContent:
    """How a generator step's chunks go out: ``RunContent`` events through the sink's fast path."""
    emit_content = ctx.content_emitter(ev.RUN_CONTENT, scope.fields())

    async def chunk(content: Any) -> None:
        await emit_content(to_jsonable(content))

    return chunk


def _keep(streamed: io.StringIO | None, chunk: Any) -> io.StringIO:
    """Add a chunk to the text a generator step streamed, its output if it returns none:
    one buffer, ~1 byte a character, where a list would hold an object per chunk."""
    if streamed is None:
        streamed = io.StringIO()
    streamed.write(chunk if isinstance(chunk, str) else str(chunk))
    return streamed


async def _drain_async(gen: Any, ctx: RunContext, scope: StepScope) -> StepOutput:
    streamed: io.StringIO | None = None
    chunk = _chunks(ctx, scope)
    async for item in gen:
        if isinstance(item, StepOutput):
            return item
        streamed = _keep(streamed, item)
        await chunk(item)
    return _as_output(None, streamed)


_END = object()


async def _drain_sync(gen: Any, ctx: RunContext, scope: StepScope) -> StepOutput:
    streamed: io.StringIO | None = None
    result: Any = None

    def advance() -> Any:
        nonlocal result
        try:
            return next(gen)
        except StopIteration as stop:
            result = stop.value
            return _END

    chunk = _chunks(ctx, scope)
    worker = WorkerThread(f"runstream-step-{scope.step_name}")  # one thread for all its chunks
    try:
        while (item := await worker.call(advance)) is not _END:
            if isinstance(item, StepOutput):
                return item
            streamed = _keep(streamed, item)
            await chunk(item)
    finally:
        worker.close()
    return _as_output(result, streamed)


def _as_output(value: Any, streamed: io.StringIO | None = None) -> StepOutput:
    if isinstance(value, StepOutput):
        return value
    if value is None and streamed is not None:
        value = streamed.getvalue()
    return StepOutput(content=value)


def as_step(item: Any) -> StepBase:
    """Let a plain function or an agent stand where a ``Step`` stands."""
    if isinstance(item, StepBase):
        return item
    if isinstance(item, AgentLike):
        return Step(agent=item)
    if callable(item):
        return Step(executor=item)
    raise TypeError(f"not a step: {item!r}")


async def run_step(step: StepBase, step_input: StepInput, ctx: RunContext, scope: StepScope) -> StepOutput:
    """``step.execute``, unless a resumed or continued run finished that part before: then
    its output from the log, and no events. Every step kind (and any ``StepBase``) is skipped here."""
    done = ctx.completed_steps.get(scope.path)
    if done is not None:
        return done
    return await step.execute(step_input, ctx, scope)


async def run_sequence(
    steps: Sequence[StepBase],
    step_input: StepInput,
    ctx: RunContext,
    scope_for: Callable[[StepBase, int], StepScope],
) -> tuple[list[StepOutput], StepInput]:
    """Run steps one after another, each fed the previous one's output.

    Returns the outputs, in order, and the input the next step would get;
    stops early after an output with ``stop=True``.
    """
    outputs: list[StepOutput] = []
    for index, step in enumerate(steps):
        output = await run_step(step, step_input, ctx, scope_for(step, index))
        outputs.append(output)
        step_input = step_input.next(output)
        if output.stop:
            break
    return outputs, step_input


def describe_error(exc: BaseException) -> str:
    """An exception's message, or its type's name when it has none."""
    return str(exc) or type(exc).__name__


def has_human_review(step: StepBase) -> bool:
    """Whether a step, or any step inside it, may pause for a person."""
    if getattr(step, "human_review", None) is not None:
        return True
    children = [*getattr(step, "steps", []), *getattr(step, "else_steps", []), *getattr(step, "choices", [])]
    return any(has_human_review(child) for child in children if isinstance(child, StepBase))
