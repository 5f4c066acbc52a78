"""What one client may take of the server: sizes, rates, counts and time, each configurable.

``Limits`` holds the settings (from code or ``RUNSTREAM_*`` variables); the
counters here are pure, in-process bookkeeping: with several replicas each one
enforces them for the clients it serves. A limit that is reached answers the
client that reached it with a ``LimitExceeded`` (HTTP 429) or ``MessageTooLarge``
(413) and leaves every other client alone.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from runstream.errors import LimitExceeded, ProtocolError, RateLimited

__all__ = ["Limits", "RateWindow", "Counter", "DEFAULT_MAX_MESSAGE_SIZE", "MAX_JSON_DEPTH", "check_depth"]

DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024
MAX_JSON_DEPTH = 64
"""Nesting deeper than this in a request body or frame is refused: no workflow input needs it,
and validating it recursively would exhaust the stack."""


@dataclass
class Limits:
    """``None`` turns a limit off. ``max_message_size``: bytes of one WebSocket frame or HTTP
    request body. ``runs_per_minute``/``max_runs_per_user``: per user (the JWT's user, else the
    client's address); the security key and admins are not held to them. ``max_concurrent_runs``:
    runs this server executes at once; further runs wait in the log's queue, which holds at most
    ``max_queued_runs`` (``0``: no queue, a run past the cap is refused). ``max_connections_per_client``: open WebSockets and SSE
    streams per client address. ``max_subscriptions``: runs one socket follows at once.
    ``idle_timeout``: seconds a socket may stay silent while it follows nothing (and an
    unauthenticated one may wait to authenticate). ``max_lag``: seconds a reader may stay
    behind a live run before it is disconnected, told to reconnect with its last index."""

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    runs_per_minute: int | None = 60
    max_runs_per_user: int | None = 20
    max_concurrent_runs: int | None = 1000
    max_queued_runs: int | None = 10_000
    max_connections_per_client: int | None = 1000
    max_subscriptions: int | None = 100
    idle_timeout: float | None = 300.0
    max_lag: float | None = 60.0

    _ENV: ClassVar[dict[str, str]] = {
        "max_message_size": "RUNSTREAM_MAX_MESSAGE_SIZE",
        "runs_per_minute": "RUNSTREAM_RUNS_PER_MINUTE",
        "max_runs_per_user": "RUNSTREAM_MAX_RUNS_PER_USER",
        "max_concurrent_runs": "RUNSTREAM_MAX_CONCURRENT_RUNS",
        "max_queued_runs": "RUNSTREAM_MAX_QUEUED_RUNS",
        "max_connections_per_client": "RUNSTREAM_MAX_CONNECTIONS_PER_CLIENT",
        "max_subscriptions": "RUNSTREAM_MAX_SUBSCRIPTIONS",
        "idle_timeout": "RUNSTREAM_IDLE_TIMEOUT",
        "max_lag": "RUNSTREAM_MAX_LAG",
    }

    @classmethod
    def from_env(cls, **overrides: Any) -> Limits:
        """Defaults, then ``RUNSTREAM_*`` (``off`` or ``0`` turns one off, except that a message
        size is always bounded and ``RUNSTREAM_MAX_QUEUED_RUNS=0`` means no queue), then ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = cls._ENV.get(f.name)
            raw = os.environ.get(name, "").strip() if name else ""
            if not raw:
                continue
            off = raw.lower() in ("off", "none") or raw == "0" and f.name != "max_queued_runs"
            if off and f.name != "max_message_size":
                values[f.name] = None
            else:
                number = float(raw)
                values[f.name] = number if f.name in ("idle_timeout", "max_lag") else int(number)
        values.update(overrides)
        return cls(**values)


class RateWindow:
    """At most ``limit`` events per key in any ``window`` seconds (a sliding log per key)."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._log: dict[str, deque[float]] = {}

    def take(self, key: str, now: float | None = None) -> None:
        """Count one for ``key``, or raise ``LimitExceeded`` (with when to retry) and count nothing."""
        now = time.monotonic() if now is None else now
        times = self._log.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            retry = max(0.0, times[0] + self.window - now)
            raise RateLimited(
                f"Too many runs started: {self.limit} per {self.window:g} s; retry in {retry:.0f} s", retry
            )
        times.append(now)
        if len(self._log) > 10_000:  # forget keys that have gone quiet
            for stale in [k for k, v in self._log.items() if not v or v[-1] <= now - self.window]:
                del self._log[stale]


class Counter:
    """Open things per key (connections per address), refusing past ``limit`` with ``error``."""

    def __init__(self, limit: int | None, what: str, error: type[LimitExceeded]) -> None:
        self.limit = limit
        self.what = what
        self.error = error
        self._open: dict[str, int] = {}

    def acquire(self, key: str) -> None:
        count = self._open.get(key, 0)
        if self.limit is not None and count >= self.limit:
            raise self.error(f"Too many {self.what} from {key} (limit {self.limit})")
        self._open[key] = count + 1

    def release(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def count(self, key: str) -> int:
        return self._open.get(key, 0)


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """``ProtocolError`` if parsed JSON nests deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise ProtocolError(f"JSON nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children)
