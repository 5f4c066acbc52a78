"""Retention: how long finished runs are kept, as a policy rather than an accident.

By default everything is kept for ever. ``RetentionPolicy(keep_days=30)``
deletes runs that finished more than 30 days ago, with their events;
``outputs_only=True`` deletes only their events and keeps each run's row with
its final output (a replay then says its events were pruned). Running runs
are never touched. A server applies its policy periodically; apply one now
with ``apply_retention(log, policy)`` or ``runstream retention`` (``cli/retention.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass

from runstream.log.base import EventLog

__all__ = ["RetentionPolicy", "apply_retention", "keep_applying"]

logger = logging.getLogger(__name__)

DAY = 86400.0
PRUNE_BATCH = 10
"""Runs pruned per transaction. Appends wait for each one (a log has one writer), so it is kept
short: ten runs of a thousand events take ~0.2 s on SQLite here (bench/sqlite_stall.py)."""


@dataclass(frozen=True)
class RetentionPolicy:
    """``keep_days=None`` keeps every run for ever; else runs finished longer ago than that
    lose their events, and, unless ``outputs_only``, their rows too."""

    keep_days: float | None = None
    outputs_only: bool = False

    def __post_init__(self) -> None:
        if self.keep_days is not None and self.keep_days < 0:
            raise ValueError("keep_days must be 0 or more (or None to keep runs for ever)")

    @classmethod
    def from_env(cls) -> RetentionPolicy:
        """``RUNSTREAM_RETENTION_DAYS`` and ``RUNSTREAM_RETENTION_OUTPUTS_ONLY`` (``1``/``true``)."""
        days = os.environ.get("RUNSTREAM_RETENTION_DAYS")
        outputs_only = os.environ.get("RUNSTREAM_RETENTION_OUTPUTS_ONLY", "").lower() in ("1", "true", "yes")
        return cls(float(days) if days else None, outputs_only)


async def apply_retention(log: EventLog, policy: RetentionPolicy, now: float | None = None) -> int:
    """Prune what ``policy`` no longer keeps, in small transactions (appends go on between
    them); returns how many runs were pruned."""
    if policy.keep_days is None:
        return 0
    cutoff = (time.time() if now is None else now) - policy.keep_days * DAY
    total = 0
    while pruned := await log.prune_runs(cutoff, keep_outputs=policy.outputs_only, limit=PRUNE_BATCH):
        total += pruned
    return total


async def keep_applying(log: EventLog, policy: RetentionPolicy, interval: float = 3600.0) -> None:
    """Apply ``policy`` now and then every ``interval`` seconds, until cancelled."""
    while True:
        try:
            pruned = await apply_retention(log, policy)
            if pruned:
                logger.info("retention pruned %d finished runs", pruned)
        except Exception:  # a database hiccup: the next round tries again
            logger.exception("applying the retention policy failed")
        await asyncio.sleep(interval)
