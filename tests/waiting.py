"""The one way tests wait: poll a condition until it holds, or fail saying what was awaited.

Never sleep hoping something has happened; wait for it with ``until`` (async
tests) or ``wait_until`` (sync tests, threads). Both take the same arguments.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

__all__ = ["POLL", "until", "wait_until"]

POLL = 0.01
"""Seconds between two looks at the condition."""


async def until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> None:
    """Return once ``condition()`` is true (it may return an awaitable); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(POLL)


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> None:
    """``until`` for code without an event loop: blocks this thread between looks."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL)
