"""Run a step's sync code in a daemon thread of its own.

A cancelled or timed-out run stops waiting for the thread at once and
abandons it: the thread finishes on its own and its result is dropped. Unlike
``asyncio.to_thread``, an abandoned thread neither fills the shared executor
nor holds up the shutdown of the event loop (which waits for that executor).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["in_thread"]

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``await in_thread(fn, *args)``: ``fn(*args)`` off the event loop, cancellable at once."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the waiter was cancelled: the result goes nowhere
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = context.run(fn, *args)
        except BaseException as exc:  # handed to the waiter, which re-raises it
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop has closed: the run is long gone
            pass

    name = f"runstream-step-{getattr(fn, '__name__', 'call')}"
    threading.Thread(target=work, name=name, daemon=True).start()
    return await future
