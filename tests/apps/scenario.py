"""One run across crashes: a client starts it, the server dies, a new one starts, the client reconnects.

``cross_crashes`` plays it with real processes and a real WebSocket client;
``check_crossing`` asserts what must hold whatever the moments of the crashes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from runstream import SQLiteLog
from runstream.client import Event as ClientEvent
from runstream.client import Transcript
from runstream.events import TERMINAL_EVENTS
from runstream.log.base import RunRecord
from tests.apps.process import CrashableServer
from tests.waiting import until
from tests.wsclient import parse, recv, send

__all__ = ["Crash", "Crossing", "Follower", "check_crossing", "cross_crashes", "crash_inside_steps", "read_log"]

Event = dict[str, Any]


class Follower:
    """A client's view of one run across reconnects; it checks each index comes once, in order,
    and that an event sent again (a finished run replays from 0) is the same as the first time."""

    def __init__(self) -> None:
        self.seen: list[Event] = []
        self.notices: list[Event] = []

    @property
    def last(self) -> int | None:
        return self.seen[-1]["event_index"] if self.seen else None

    def take(self, message: Event) -> bool:
        """Keep ``message``; True once the run has ended."""
        if "event_index" not in message:
            self.notices.append(message)
            return False
        index = message["event_index"]
        if index < len(self.seen):
            assert message == self.seen[index], f"event {index} came again, different"
        else:
            assert index == len(self.seen), f"gap: got {index} after {self.last}"
            self.seen.append(message)
        return message["event"] in TERMINAL_EVENTS

    async def listen(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                if self.take(parse(frame)):
                    return
        except ConnectionClosed:
            return


@dataclass
class Crash:
    """The log and the step executions at the moment a server was killed."""

    log: list[Event]
    ran: collections.Counter[str]


@dataclass
class Crossing:
    follower: Follower
    record: RunRecord
    log: list[Event]
    ran: collections.Counter[str]
    crashes: list[Crash] = field(default_factory=list)

    @property
    def seen(self) -> list[Event]:
        return self.follower.seen

    def resumed(self) -> list[Event]:
        return [e for e in self.log if e["event"] == "WorkflowResumed"]


async def read_log(database: Path, run_id: str | None = None) -> tuple[RunRecord, list[Event]]:
    """A run (by default the only one) in ``database`` and its events, read with the real log."""
    log = SQLiteLog(database)
    await log.open()
    try:
        if run_id is None:
            (record,) = await log.list_runs()
        else:
            found = await log.get_run(run_id)
            assert found is not None
            record = found
        events = await log.read(record.run_id, 0, 100_000)
    finally:
        await log.close()
    return record, [json.loads(e.data) for e in events]


async def _session(
    server: CrashableServer, follower: Follower, action: Event, kill_when: Callable[[], bool] | None
) -> None:
    """Connect, send ``action``, listen; kill the server once ``kill_when()`` (else listen to the end)."""
    async with connect(server.ws_url) as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, **action)
        listener = asyncio.create_task(follower.listen(ws))
        if kill_when is None:
            await asyncio.wait_for(listener, 60)
            return
        await until(lambda: kill_when() or listener.done(), what="the moment to kill the server")
        server.kill()
        await listener


def _in_step(crash_at: str, follower: Follower) -> bool:
    """Inside a step, kill only once its ``StepStarted`` is in the log (a client saw it)."""
    kind, _, step = crash_at.partition(":")
    return kind != "step" or any(e["event"] == "StepStarted" and e["step_name"] == step for e in follower.seen)


async def cross_crashes(
    folder: Path,
    workflow_id: str,
    crash_at: str = "",
    kill_after: tuple[int, ...] = (),
    pace: float = 0.0,
    message: str = "tides",
) -> Crossing:
    """Start a run and SIGKILL its server at ``crash_at`` (a point of ``tests.apps.crashable``),
    or, for each ``n`` of ``kill_after``, once the client saw ``n`` more events, restarting on
    the same log and reconnecting with the last index seen each time; then read to the end."""
    follower = Follower()
    crashes: list[Crash] = []
    action: Event = {"action": "start-workflow", "workflow_id": workflow_id, "message": message}
    plan: list[tuple[str, Callable[[], bool]]] = []
    if crash_at:
        plan.append((crash_at, lambda: server.reached() and _in_step(crash_at, follower)))
    plan.extend(("", _seen_more(follower, n)) for n in kill_after)
    server = CrashableServer(folder)
    for point, kill_when in plan:
        server = CrashableServer(folder, crash_at=point, pace=pace).start()
        try:
            await _session(server, follower, action, kill_when)
        finally:
            if server.process is not None and server.process.poll() is None:
                server.kill()
        crashes.append(Crash((await read_log(server.database))[1], server.executions(message)))
        run_id = crashes[-1].log[0]["run_id"] if crashes[-1].log else (await read_log(server.database))[0].run_id
        action = {"action": "reconnect", "run_id": run_id, "last_event_index": follower.last}
    server = CrashableServer(folder, pace=pace).start()
    try:
        await _session(server, follower, action, None)
    finally:
        server.kill()
    record, log = await read_log(server.database)
    return Crossing(follower, record, log, server.executions(message), crashes)


async def crash_inside_steps(folder: Path, runs: list[tuple[str, str]]) -> list[Crossing]:
    """Start each ``(workflow_id, "topic@step")`` run, each stopping inside its step; SIGKILL
    the server once all are there, restart on the same log, reconnect each client to the end."""
    followers = [Follower() for _ in runs]
    steps = [message.rpartition("@")[2] for _, message in runs]
    server = CrashableServer(folder, crash_at="step:@input").start()
    try:
        async with contextlib.AsyncExitStack() as stack:
            listeners = []
            for (workflow_id, message), follower in zip(runs, followers):
                ws = await stack.enter_async_context(connect(server.ws_url))
                await recv(ws)
                await send(ws, action="start-workflow", workflow_id=workflow_id, message=message)
                listeners.append(asyncio.create_task(follower.listen(ws)))
            await until(
                lambda: all(server.reached(s) and _in_step(f"step:{s}", f) for s, f in zip(steps, followers)),
                what="every run to stop inside its step",
            )
            server.kill()
            await asyncio.gather(*listeners)
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()
    crashes = []
    for (_, message), follower in zip(runs, followers):
        _, log = await read_log(server.database, follower.seen[0]["run_id"])
        crashes.append(Crash(log, server.executions(message)))
    server = CrashableServer(folder).start()
    try:
        await asyncio.gather(
            *(
                _session(server, f, {"action": "reconnect", "run_id": f.seen[0]["run_id"], "last_event_index": f.last}, None)
                for f in followers
            )
        )
    finally:
        server.kill()
    crossings = []
    for (_, message), follower, crash in zip(runs, followers, crashes):
        record, log = await read_log(server.database, follower.seen[0]["run_id"])
        crossings.append(Crossing(follower, record, log, server.executions(message), [crash]))
    return crossings


def _seen_more(follower: Follower, n: int) -> Callable[[], bool]:
    """True once the client saw ``n`` events more than at the first call."""
    start: int | None = None

    def enough() -> bool:
        nonlocal start
        if start is None:
            start = len(follower.seen)
        return len(follower.seen) >= start + n

    return enough


def check_crossing(c: Crossing) -> None:
    """Nothing seen is lost, every index once, every step completed once and never run
    again once its completion was written."""
    assert [e["event_index"] for e in c.log] == list(range(len(c.log)))
    assert c.seen == c.log, "what the client saw, across the crashes, is not the log"
    assert [e["event"] in TERMINAL_EVENTS for e in c.log].count(True) == 1 and c.log[-1]["event"] in TERMINAL_EVENTS
    completed = collections.Counter(e["step_name"] for e in c.log if e["event"] == "StepCompleted")
    assert set(completed.values()) <= {1}, f"a step completed twice: {completed}"
    for crash in c.crashes:
        assert crash.log == c.log[: len(crash.log)], "a restart rewrote history"
        for event in crash.log:
            if event["event"] == "StepCompleted":
                step = event["step_name"]
                assert c.ran[step] == crash.ran[step], f"{step} ran again after its completion was logged"
    assert len(c.resumed()) <= len(c.crashes)
    check_text_once(c.log)


def check_text_once(log: list[dict[str, Any]]) -> None:
    """A client that appends each step's streamed text shows it once, even for a step a
    resume ran again: ``WorkflowResumed`` says which earlier text it supersedes."""
    transcript = Transcript()
    for event in log:
        transcript.add(ClientEvent.from_data(event))
    for event in log:
        if event["event"] == "StepCompleted" and isinstance(event["content"], str):
            streamed = any(e["event"] == "RunContent" and e["step_id"] == event["step_id"] for e in log)
            if streamed:
                assert transcript.of(event["step_id"]) == event["content"], f"{event['step_name']}'s text shown wrong"
    for resumed in (e for e in log if e["event"] == "WorkflowResumed"):
        before = log[: resumed["event_index"]]
        starts = [e for e in before if e["event"] == "StepStarted" and e["step_id"] in resumed["superseded_step_ids"]]
        done = {e["step_id"] for e in before if e["event"] == "StepCompleted"}
        assert not done & set(resumed["superseded_step_ids"]), "a completed step was superseded"
        assert resumed["supersedes_from_index"] == min((e["event_index"] for e in starts), default=None)
