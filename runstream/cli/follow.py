"""``run``, ``attach``, ``replay``: follow a run on screen or as JSON lines, and detach on Ctrl-C.

Following survives dropped connections (the client reconnects and resumes
after the last event shown). Ctrl-C leaves the run running on the server.
When the run pauses for a person, a terminal asks the questions and continues the
run with the answer; without one, the pause is shown and the exit status is 3.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from rich.console import Console
from rich.live import Live

from runstream.cli.command import Command, make_client
from runstream.cli.display import END_STATUS, RunView, ToolView, format_output, progress_line, render
from runstream.cli.pauses import PAUSED_EXIT, answer_from_args, ask, explain
from runstream.client import Client, Event, ServerError

__all__ = ["ATTACH", "REPLAY", "RUN", "continue_and_follow", "follow_run", "resolve"]

_EXIT = {"completed": 0, "error": 1, "cancelled": 2, "paused": PAUSED_EXIT}


def follow_run(args: argparse.Namespace, run_id: str, console: Console, after: int | None = None) -> int:
    """Follow ``run_id`` until its end; on Ctrl-C, say the run goes on and return 130."""
    try:
        return asyncio.run(_follow(args, run_id, console, after))
    except KeyboardInterrupt:
        console.print(f"\nDetached from run {run_id}; it keeps running on the server. "
                      f"Reattach with: runstream attach {run_id}", style="bold")
        return 130


class _FirstContact:
    """Until the first event arrives, a server that cannot be reached is an error after a few
    quick tries, not a wait through the client's whole reconnect budget (~50 s): a wrong
    ``--url`` or a stopped server fails in about a second. Once following, drops are retried."""

    tries = 3

    def __init__(self) -> None:
        self.made = False
        self.failures = 0

    def dropped(self, error: BaseException) -> None:
        if self.made or not _unreachable(error):
            return  # a connection was made, and dropped: the client reconnects
        self.failures += 1
        if self.failures >= self.tries:
            raise error


def _unreachable(error: BaseException) -> bool:
    """A connection that could not be made (refused, no route, no such host, timed out)."""
    return isinstance(error, OSError) and not isinstance(error, (ConnectionResetError, BrokenPipeError,
                                                                 ConnectionAbortedError))


async def _follow(args: argparse.Namespace, run_id: str, console: Console, after: int | None = None) -> int:
    if args.json:
        return await _follow_json(args, run_id, after)
    view = RunView(run_id)
    contact = _FirstContact()

    def on_reconnect(error: BaseException, delay: float) -> None:
        contact.dropped(error)
        view.note = f"connection lost ({type(error).__name__}); reconnecting in {delay:.1f}s"
        if not console.is_terminal:
            console.print(view.note, markup=False, highlight=False)

    def show(event: Event) -> None:
        contact.made = True
        view.add(event)
        if not console.is_terminal:
            line = progress_line(view, event)
            if line is not None:
                console.print(line, markup=False, highlight=False, soft_wrap=True)

    async with make_client(args, on_reconnect) as client:
        if after is not None:
            await _read_quietly(client, run_id, after, view)
        while True:
            if console.is_terminal:
                with Live(get_renderable=lambda: render(view), console=console, refresh_per_second=8):
                    paused = await _until_pause(client, run_id, after, show)
            else:  # a pipe or CI: a plain line per step, tool call and reconnect, not a redrawn screen
                paused = await _until_pause(client, run_id, after, show)
            if paused is None:
                break
            after = paused.index
            requirement = await _waiting_on(client, run_id, paused)
            if requirement is None:  # an earlier pause, answered since: read on
                continue
            view.status = "paused"
            if not (console.is_terminal and sys.stdin.isatty()):
                console.print("\n" + explain(requirement, run_id), markup=False, highlight=False, soft_wrap=True)
                return PAUSED_EXIT
            await _answer(client, console, run_id, requirement)
    _summary(view, console)
    return _EXIT.get(view.status, 1)


async def _read_quietly(client: Client, run_id: str, through: int, view: RunView) -> None:
    """A continue shows the run from its pause on, yet sums up the whole run (its duration from
    its first event, its steps): fold what came before into the view without showing it."""
    events = client.follow(run_id)
    try:
        async for event in events:
            view.add(event)
            if event.index >= through:
                break
    finally:
        await events.aclose()


async def _until_pause(
    client: Client, run_id: str, after: int | None, show: Callable[[Event], None]
) -> Event | None:
    """Follow the run, showing each event, to its end (None) or to a ``WorkflowPaused``."""
    events = client.follow(run_id, after)
    try:
        async for event in events:
            show(event)
            if event.paused:
                return event
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    return None


async def _waiting_on(client: Client, run_id: str, paused: Event) -> dict[str, Any] | None:
    """The requirement the run waits on, if ``paused`` is still its current pause."""
    requirement = await client.pending(run_id)
    if requirement is None or requirement.get("requirement_id") != paused.data.get("requirement_id"):
        return None
    return requirement


async def _answer(client: Client, console: Console, run_id: str, requirement: dict[str, Any]) -> None:
    """Ask until the server accepts the answer (or another client answered first)."""
    while True:
        answer = await asyncio.to_thread(ask, console, requirement)
        try:
            await client.continue_run(run_id, **answer)
            return
        except ServerError as exc:
            if exc.code != "invalid_continue":
                console.print(f"[yellow]{exc}[/]")
                return
            console.print(f"[red]{exc}[/]")


async def _follow_json(args: argparse.Namespace, run_id: str, after: int | None = None) -> int:
    contact = _FirstContact()

    def on_reconnect(error: BaseException, delay: float) -> None:
        contact.dropped(error)
        print(f"connection lost ({type(error).__name__}); reconnecting in {delay:.1f}s", file=sys.stderr)

    seen: list[Event] = []

    def show(event: Event) -> None:
        contact.made = True
        print(event.to_json(), flush=True)
        seen[:] = [event]

    async with make_client(args, on_reconnect) as client:
        while (paused := await _until_pause(client, run_id, after, show)) is not None:
            after = paused.index
            if await _waiting_on(client, run_id, paused) is not None:
                return PAUSED_EXIT
    return _EXIT.get(END_STATUS.get(seen[0].name, "") if seen else "", 1)


def continue_and_follow(args: argparse.Namespace) -> int:
    """``runstream continue``: answer the run's pause, then follow what comes of it."""
    console = Console(stderr=args.json)
    args.run_id = resolve(args)

    async def answer() -> int:
        async with make_client(args) as client:
            requirement = await client.pending(args.run_id)
            if requirement is None:
                run = await client.get_run(args.run_id)
                raise ServerError(f"Run is not paused (status={run.status})", "run_not_paused", 409)
            run = await client.get_run(args.run_id)
            await client.continue_run(args.run_id, **answer_from_args(args, requirement))
            return run.event_count - 1

    paused_at = asyncio.run(answer())
    if args.no_follow:
        console.print(f"Continued run {args.run_id}", style="dim")
        return 0
    return follow_run(args, args.run_id, console, after=paused_at)


def _summary(view: RunView, console: Console) -> None:
    console.print(f"Run {view.run_id} {view.status} in {view.elapsed():.1f}s ({view.last_index + 1} events)",
                  highlight=False)
    if view.error:
        console.print(view.error, style="red", markup=False, highlight=False)
    elif view.output is not None:
        console.print(format_output(view.output), markup=False, highlight=False, soft_wrap=True)


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
    parser.add_argument("run_id", help="a run id, or a prefix of one that no other run shares")


def resolve(args: argparse.Namespace) -> str:
    """The full id of ``args.run_id``, a unique prefix of it as git takes one (a whole id is
    taken as it is, without a request: following it then needs the WebSocket alone)."""
    if _whole_id(args.run_id):
        return str(args.run_id)

    async def find() -> str:
        async with make_client(args) as client:
            return await client.resolve(args.run_id)

    run_id: str = asyncio.run(find())
    return run_id


def _whole_id(text: str) -> bool:
    try:
        return len(text) == 36 and str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def _attach(args: argparse.Namespace) -> int:
    return follow_run(args, resolve(args), Console(stderr=args.json))


def _replay(args: argparse.Namespace) -> int:
    """Every event as a line: JSON with ``--json``, else index, name and what it says."""
    run_id = resolve(args)

    async def replay() -> None:
        async with make_client(args) as client:
            async for event in client.replay(run_id):
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
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else None
    if tool is not None:  # ToolCallStarted / ToolCallCompleted: name(arguments), then its duration and result
        took = (tool.get("metrics") or {}).get("duration")
        detail = ToolView(str(tool.get("tool_name")), tool.get("tool_args"), duration=took).describe()
        if "result" in tool:
            detail += f" -> {orjson.dumps(tool['result'], default=str).decode()}"
    elif event.name == "RunContent":
        detail = repr(data.get("content"))
    elif data.get("content") is not None:
        detail = data["content"] if isinstance(data["content"], str) else orjson.dumps(data["content"]).decode()
    else:
        detail = data.get("error") or data.get("reason") or ""
    return f"{event.index:>5} {event.name:<22} {what} {detail}".rstrip()


RUN = Command("run", "start a run and follow it live", _configure_run, _run)
ATTACH = Command("attach", "follow a run started elsewhere, from its first event", _configure_run_id, _attach)
REPLAY = Command("replay", "print every event of a run, one per line", _configure_run_id, _replay)
