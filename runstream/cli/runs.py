"""``runs`` (a table of runs) and ``cancel``."""

from __future__ import annotations

import argparse
import asyncio
import datetime

import orjson
from rich.console import Console
from rich.table import Table

from runstream.cli.command import Command, make_client
from runstream.client import Run

__all__ = ["CANCEL", "RUNS"]


def _configure_runs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workflow", help="only this workflow's runs")
    parser.add_argument("--status", choices=["running", "paused", "completed", "error", "cancelled"])
    parser.add_argument("--session-id")
    parser.add_argument("--user-id")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--offset", type=int, default=0)


def _runs(args: argparse.Namespace) -> int:
    async def fetch() -> list[Run]:
        async with make_client(args) as client:
            return await client.runs(args.workflow, args.status, args.session_id, args.user_id,
                                     args.limit, args.offset)

    runs = asyncio.run(fetch())
    if args.json:
        for run in runs:
            print(orjson.dumps(run.as_dict()).decode())
        return 0
    if not runs:
        filtered = any(v is not None for v in (args.workflow, args.status, args.session_id, args.user_id))
        print("no runs match" if filtered or args.offset else "no runs yet")
        return 0
    table = Table()
    # an id stays whole, to be copied into `attach`, however narrow the terminal
    table.add_column("run id", no_wrap=True, min_width=max(len(run.run_id) for run in runs))
    for name in ("workflow", "status", "started", "events"):
        table.add_column(name)
    for run in runs:
        started = datetime.datetime.fromtimestamp(run.created_at).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(run.run_id, run.workflow_id, run.status, started, str(run.event_count))
    Console().print(table)
    return 0


def _configure_cancel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", help="a run id, or a prefix of one that no other run shares")


def _cancel(args: argparse.Namespace) -> int:
    async def cancel() -> str:
        async with make_client(args) as client:
            run_id = await client.resolve(args.run_id)
            await client.cancel(run_id)
            return run_id

    run_id = asyncio.run(cancel())
    if args.json:
        print(orjson.dumps({"run_id": run_id, "cancelled": True}).decode())
    else:
        print(f"Cancelled run {run_id}; it ends with WorkflowCancelled.")
    return 0


RUNS = Command("runs", "list runs, newest first", _configure_runs, _runs)
CANCEL = Command("cancel", "cancel a running run", _configure_cancel, _cancel)
