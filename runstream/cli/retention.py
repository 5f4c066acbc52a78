"""``runstream retention``: apply a retention policy to a log now, e.g. from cron."""

from __future__ import annotations

import argparse
import asyncio
import os

from runstream.cli.command import Command
from runstream.log import open_log
from runstream.log.retention import RetentionPolicy, apply_retention

__all__ = ["RETENTION", "configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of the retention command."""
    parser.add_argument("--database-url", default=os.environ.get("RUNSTREAM_DATABASE_URL"),
                        help="sqlite:///PATH or postgresql://... (default: env RUNSTREAM_DATABASE_URL)")
    parser.add_argument("--keep-days", type=float, required=True, help="keep runs finished in the last N days")
    parser.add_argument("--outputs-only", action="store_true",
                        help="for older runs, delete only their events and keep each run's final output")


def run(args: argparse.Namespace) -> int:
    """Prune with the parsed options; prints how many runs were pruned."""
    if not args.database_url:
        raise SystemExit("error: --database-url (or RUNSTREAM_DATABASE_URL) is required")
    policy = RetentionPolicy(args.keep_days, args.outputs_only)
    pruned = asyncio.run(_prune(args.database_url, policy))
    what = "events deleted, final outputs kept" if policy.outputs_only else "deleted"
    print(f"{pruned} runs finished more than {args.keep_days:g} days ago: {what}")
    return 0


async def _prune(database_url: str, policy: RetentionPolicy) -> int:
    log = open_log(database_url)
    await log.open()
    try:
        return await apply_retention(log, policy)
    finally:
        await log.close()


RETENTION = Command(
    "retention",
    "delete finished runs older than N days (or, with --outputs-only, only their events)",
    configure,
    run,
    talks_to_server=False,
)
