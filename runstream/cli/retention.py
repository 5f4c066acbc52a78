"""``retention``: apply a retention policy to a log now, e.g. from cron."""

from __future__ import annotations

from runstream.cli.command import Command
from runstream.log.retention import configure, run

__all__ = ["RETENTION"]

RETENTION = Command(
    "retention",
    "delete finished runs older than N days (or, with --outputs-only, only their events)",
    configure,
    run,
    talks_to_server=False,
)
