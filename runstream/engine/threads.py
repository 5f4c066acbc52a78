"""Run a step's sync code in a daemon thread of its own.

A cancelled or timed-out run stops waiting for the thread at once and
abandons it: the thread finishes on its own and its result is dropped. Unlike
``asyncio.to_thread``, an abandoned thread neither fills the shared executor
nor holds up the shutdown of the event loop (which waits for that executor).
``in_thread`` runs one call in a new thread; ``WorkerThread`` runs many calls,
one after another, in one thread (a sync generator step's chunks).
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["WorkerThread", "in_thread"]

T = TypeVar("T")


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the waiter was cancelled: the result goes nowhere
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _call(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    context: contextvars.Context,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    """In the worker thread: run ``fn`` and hand its result (or error) to ``future``."""
    result: Any = None
    error: BaseException | None = None
    try:
        result = context.run(fn, *args)
    except BaseException as exc:  # handed to the waiter, which re-raises it
        error = exc
    try:
        loop.call_soon_threadsafe(_settle, future, result, error)
    except RuntimeError:  # the loop has closed: the run is long gone
        pass


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``await in_thread(fn, *args)``: ``fn(*args)`` off the event loop, cancellable at once."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()
    name = f"runstream-step-{getattr(fn, '__name__', 'call')}"
    threading.Thread(target=_call, args=(loop, future, context, fn, args), name=name, daemon=True).start()
    return await future


class WorkerThread:
    """One daemon thread, started on first use, that runs the calls given to it in order,
    in the context of its creator. ``close`` lets it end after its current call."""

    __slots__ = ("name", "_calls", "_context", "_thread")

    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._context = contextvars.copy_context()
        self._thread: threading.Thread | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in this worker's thread, cancellable at once (as ``in_thread``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._thread.start()
        self._calls.put((loop, future, self._context, fn, args))
        return await future

    def close(self) -> None:
        self._calls.put(None)

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            _call(*call)
