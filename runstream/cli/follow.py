"""``run``, ``attach``, ``replay``: follow a run on screen or as JSON lines, and detach on Ctrl-C.

Following survives dropped connections (the client reconnects and resumes
after the last event shown). Ctrl-C leaves the run running on the server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from rich.console import Console
from rich.live import Live

from runstream.cli.command import Command, make_client
from runstream.cli.display import END_STATUS, RunView, render
from runstream.client import Event

__all__ = ["ATTACH", "REPLAY", "RUN", "follow_run"]

_EXIT = {"completed": 0, "error": 1, "cancelled": 2}


def follow_run(args: argparse.Namespace, run_id: str, console: Console) -> int:
    """Follow ``run_id`` until its end; on Ctrl-C, say the run goes on and return 130."""
    try:
        return asyncio.run(_follow(args, run_id, console))
    except KeyboardInterrupt:
        console.print(f"\nDetached from run {run_id}; it keeps running on the server. "
                      f"Reattach with: runstream attach {run_id}", style="bold")
        return 130


async def _follow(args: argparse.Namespace, run_id: str, console: Console) -> int:
    if args.json:
        return await _follow_json(args, run_id)
    view = RunView(run_id)

    def on_reconnect(error: BaseException, delay: float) -> None:
        view.note = f"connection lost ({type(error).__name__}); reconnecting in {delay:.1f}s"

    async with make_client(args, on_reconnect) as client:
        with Live(get_renderable=lambda: render(view), console=console, refresh_per_second=8):
            async for event in client.follow(run_id):
                view.add(event)
    if not console.is_terminal:
        console.line()  # Live leaves its last frame without a newline off a terminal
    _summary(view, console)
    return _EXIT.get(view.status, 1)


async def _follow_json(args: argparse.Namespace, run_id: str) -> int:
    def on_reconnect(error: BaseException, delay: float) -> None:
        print(f"connection lost ({type(error).__name__}); reconnecting in {delay:.1f}s", file=sys.stderr)

    last: Event | None = None
    async with make_client(args, on_reconnect) as client:
        async for last in client.follow(run_id):
            print(last.to_json(), flush=True)
    return _EXIT.get(END_STATUS.get(last.name, "") if last is not None else "", 1)


def _summary(view: RunView, console: Console) -> None:
    console.print(f"Run {view.run_id} {view.status} in {view.elapsed():.1f}s ({view.last_index + 1} events)")
    if view.error:
        console.print(f"[red]{view.error}[/]")
    elif view.output is not None:
        console.print(view.output if isinstance(view.output, str) else repr(view.output), markup=False)


def _configure_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", help="workflow id")
    parser.add_argument("message", help="the run's input")
    parser.add_argument("--session-id")
    parser.add_argument("--user-id")


def _run(args: argparse.Namespace) -> int:
    console = Console(stderr=args.json)

    async def start() -> str:
        async with make_client(args) as client:
            return await client.start(args.workflow, args.message, args.session_id, args.user_id)

    run_id = asyncio.run(start())
    console.print(f"Started run {run_id}", style="dim")
    return follow_run(args, run_id, console)


def _configure_run_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id")


def _attach(args: argparse.Namespace) -> int:
    return follow_run(args, args.run_id, Console(stderr=args.json))


def _replay(args: argparse.Namespace) -> int:
    """Every event as a line: JSON with ``--json``, else index, name and what it says."""
    async def replay() -> None:
        async with make_client(args) as client:
            async for event in client.replay(args.run_id):
                print(event.to_json() if args.json else _line(event), flush=True)

    try:
        asyncio.run(replay())
    except KeyboardInterrupt:
        print(f"\nStopped replaying run {args.run_id}.", file=sys.stderr)
        return 130
    return 0


def _line(event: Event) -> str:
    data = event.data
    what = data.get("step_name") or data.get("agent_name") or ""
    detail = data.get("content") if event.name != "RunContent" else repr(data.get("content"))
    detail = detail if detail is not None else data.get("error") or data.get("reason") or ""
    return f"{event.index:>5} {event.name:<22} {what} {detail}".rstrip()


RUN = Command("run", "start a run and follow it live", _configure_run, _run)
ATTACH = Command("attach", "follow a run started elsewhere, from its first event", _configure_run_id, _attach)
REPLAY = Command("replay", "print every event of a run, one per line", _configure_run_id, _replay)
