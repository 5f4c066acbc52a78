"""What the composite step kinds (steps, parallel, condition, loop, router) share.

Every part of a run has a path (``StepScope.path``) that is the same after a
restart, so a resumed run finds what its finished parts produced in
``RunContext.completed_steps`` and skips them without emitting anything:

=================  =====================================================
kind               path of its child ``j``
=================  =====================================================
top level          ``<j>``
Steps, Parallel    ``<path>.<j>``
Condition          ``<path>.t<j>`` (the then-branch), ``<path>.e<j>`` (else)
Loop               iteration ``n`` (from 1) is ``<path>.i<n>``; its
                   children are ``<path>.i<n>.<j>``
Router             ``<path>.c<k>``, ``k`` the index of the chosen step
                   among the router's choices; after ``n`` rejected output
                   reviews, ``<path>.r<n>.c<k>``
=================  =====================================================

Each completion event (``COMPLETION_EVENTS``) carries ``step_path``,
``content``, ``success``, ``error`` and ``stop`` (``completion.py`` writes and
reads them): all a resumed run needs to rebuild the output of that part.
``step.run_step`` skips a part that has one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from runstream.engine.completion import completion_fields
from runstream.engine.context import RunContext, StepScope
from runstream.engine.io import StepOutput
from runstream.engine.step import StepBase, as_step

__all__ = ["as_steps", "combine", "decide", "emit_completed", "emit_started", "resumed"]


def as_steps(items: Any) -> list[StepBase]:
    """A composite's children: a list of steps, functions or agents, or just one of them."""
    return [as_step(item) for item in (items if isinstance(items, (list, tuple)) else [items])]


async def decide(fn: Callable[..., Any], *args: Any) -> Any:
    """Call an evaluator, selector or end condition, sync or async.

    Sync ones run on the event loop: they decide, they do not work, so they
    must be quick.
    """
    result = fn(*args)
    return await result if inspect.isawaitable(result) else result


def resumed(ctx: RunContext, path: str) -> bool:
    """Whether some part inside ``path`` finished before a restart (so it has begun)."""
    prefix = f"{path}."
    return any(done.startswith(prefix) for done in ctx.completed_steps)


async def emit_started(ctx: RunContext, scope: StepScope, name: str, path: str | None = None, **fields: Any) -> None:
    """Announce a part of the run, unless a resumed or continued run already did."""
    path = path or scope.path
    if not resumed(ctx, path) and path not in ctx.started_steps:
        await ctx.emit(name, {**scope.fields(), "step_path": path, **fields})


async def emit_completed(
    ctx: RunContext, scope: StepScope, name: str, output: StepOutput, path: str | None = None, **fields: Any
) -> StepOutput:
    """Close a part of the run with the fields a resumed run rebuilds its output from."""
    if (path or scope.path) not in ctx.completed_steps:
        await ctx.emit(name, completion_fields(scope, output, path, **fields))
    return output


def combine(name: str | None, outputs: Sequence[StepOutput], passthrough: Any = None, content: Any = None) -> StepOutput:
    """One output for a run of children: the last one's content (``passthrough``
    when none ran) unless ``content`` is given; it fails if any failed and stops if any stopped."""
    if content is None:
        content = outputs[-1].content if outputs else passthrough
    return StepOutput(
        content=content,
        step_name=name,
        success=all(o.success for o in outputs),
        error=next((o.error for o in outputs if o.error), None),
        stop=any(o.stop for o in outputs),
        steps=list(outputs),
    )
