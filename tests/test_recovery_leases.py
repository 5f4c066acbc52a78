"""Ownership and takeover in process, on each log backend: leases, claims, shutdown, resume."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from runstream import RunManager, ShuttingDown, Step, StepInput, Workflow, open_log
from runstream.events import StoredEvent
from runstream.fanout.local import LocalHub
from runstream.log.base import EventLog
from runstream.runs.recovery import fold_resume_plan, owner_process_gone
from tests.runkit import Valve
from tests.waiting import until

pytestmark = pytest.mark.anyio

ELSEWHERE = "another-host:1:deadbeef"

MakeManager = Callable[..., Awaitable[RunManager]]


class Counted:
    """A three-step workflow whose middle step waits at a valve; it counts each step's runs."""

    def __init__(self) -> None:
        self.valve = Valve()
        self.ran: list[str] = []

    def workflow(self) -> Workflow:
        def first(step_input: StepInput) -> str:
            self.ran.append("first")
            return f"first({step_input.input})"

        async def middle(step_input: StepInput) -> str:
            self.ran.append("middle")
            await self.valve.wait()
            return f"middle({step_input.previous_step_content})"

        def last(step_input: StepInput) -> str:
            self.ran.append("last")
            return f"last({step_input.previous_step_content}, {step_input.get_step_content('first')})"

        steps = [Step(name="first", executor=first), Step(name="middle", executor=middle), Step(name="last", executor=last)]
        return Workflow(name="Counted", id="counted", steps=steps)


@pytest.fixture
async def manager_factory(log_url: str) -> AsyncIterator[MakeManager]:
    """Managers over one shared log (as replicas would be); closed at the end."""
    managers: list[RunManager] = []

    async def make(workflow: Workflow, owner: str | None = None) -> RunManager:
        manager = RunManager(open_log(log_url), LocalHub(), [workflow], owner=owner)
        await manager.start()
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        await manager.close()


async def events_of(log: EventLog, run_id: str) -> list[StoredEvent]:
    return await log.read(run_id, 0, 10_000)


async def test_leases_live_expire_and_release(event_log: EventLog) -> None:
    await event_log.renew_lease("a", 60)
    await event_log.renew_lease("b", 0.2)
    assert await event_log.live_owners() == {"a", "b"}
    await until(lambda: _not_live(event_log, "b"), what="b's lease to expire")
    await event_log.release_lease("a")
    assert await event_log.live_owners() == set()


async def _not_live(log: EventLog, owner: str) -> bool:
    return owner not in await log.live_owners()


async def test_an_interrupted_run_waits_for_its_owner_lease_then_exactly_one_replica_resumes_it(
    manager_factory: MakeManager,
) -> None:
    counted = Counted()
    make = manager_factory
    owner = await make(counted.workflow(), owner=ELSEWHERE)
    record = await owner.start_run("counted", "tides")
    await until(lambda: counted.ran == ["first", "middle"], what="the middle step")
    await owner.close()  # interrupted: no terminal event, still running
    replica_log = open_log(_url_of(owner))
    await replica_log.open()
    try:
        run = await replica_log.get_run(record.run_id)
        assert run is not None and run.status == "running" and run.owner == ELSEWHERE
        assert not any(e.terminal for e in await events_of(replica_log, record.run_id))
        await replica_log.renew_lease(ELSEWHERE, 60)  # as if the owner were still alive
    finally:
        await replica_log.close()

    counted.valve.open()
    b = await make(counted.workflow())
    c = await make(counted.workflow())
    assert (await b.log.get_run(record.run_id)).owner == ELSEWHERE  # type: ignore[union-attr]
    await b.log.renew_lease(ELSEWHERE, 0.2)
    await until(lambda: _not_live(b.log, ELSEWHERE), what="the owner's lease to expire")
    claimed = await asyncio.gather(b.recovery.scan(), c.recovery.scan())
    assert sorted(len(ids) for ids in claimed) == [0, 1]
    await asyncio.gather(b.wait(record.run_id), c.wait(record.run_id))

    run = await b.log.get_run(record.run_id)
    assert run is not None and run.status == "completed"
    assert run.output == "last(middle(first(tides)), first(tides))"
    assert counted.ran == ["first", "middle", "middle", "last"]
    events = [orjson.loads(e.data) for e in await events_of(b.log, record.run_id)]
    assert [e["event_index"] for e in events] == list(range(len(events)))
    assert [e["event"] for e in events].count("WorkflowResumed") == 1
    assert not any(e["event"] == "WorkflowCancelled" for e in events)


def _url_of(manager: RunManager) -> str:
    log = manager.log
    return getattr(log, "url", None) or f"sqlite:///{log.path}"  # type: ignore[attr-defined]


async def test_a_closing_manager_takes_no_new_runs(manager_factory: MakeManager) -> None:
    manager = await manager_factory(Counted().workflow())
    manager.stop_accepting()
    with pytest.raises(ShuttingDown):
        await manager.start_run("counted", "tides")


async def test_cancel_still_ends_a_run_with_workflow_cancelled(manager_factory: MakeManager) -> None:
    counted = Counted()
    manager = await manager_factory(counted.workflow())
    record = await manager.start_run("counted", "tides")
    await until(lambda: "middle" in counted.ran, what="the middle step")
    await manager.cancel(record.run_id)
    await manager.wait(record.run_id)
    events = await events_of(manager.log, record.run_id)
    assert events[-1].name == "WorkflowCancelled"
    assert (await manager.log.get_run(record.run_id)).status == "cancelled"  # type: ignore[union-attr]


def test_only_a_process_of_this_host_that_is_gone_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = socket.gethostname()
    assert owner_process_gone(f"{host}:{child.pid}:abc")
    assert not owner_process_gone(f"{host}:{os.getpid()}:abc")
    assert not owner_process_gone(f"{ELSEWHERE}")
    assert not owner_process_gone("a name of my own")


def test_the_plan_rebuilds_composite_outputs_and_finds_what_cannot_rerun() -> None:
    def event(index: int, name: str, **fields: object) -> StoredEvent:
        return StoredEvent(index, name, orjson.dumps({"event": name, "event_index": index, **fields}).decode())

    plan = fold_resume_plan(
        [
            event(0, "WorkflowStarted"),
            event(1, "ParallelExecutionStarted", step_path="0", step_name="sides"),
            event(2, "StepStarted", step_path="0.1", step_name="right", rerunnable=True),
            event(3, "StepCompleted", step_path="0.1", step_name="right", content="R", success=True, stop=False),
            event(4, "StepStarted", step_path="0.0", step_name="left", rerunnable=False),
            event(5, "RunContent", step_name="left", content="l"),
        ]
    )
    assert plan.next_index == 6
    assert set(plan.completed) == {"0.1"} and plan.completed["0.1"].content == "R"
    assert [s.path for s in plan.interrupted] == ["0", "0.0"]
    assert plan.blocked_by is not None and plan.blocked_by.name == "left"

    done = fold_resume_plan(
        [
            event(0, "StepCompleted", step_path="0.1", step_name="right", content="R", success=True, stop=False),
            event(1, "StepCompleted", step_path="0.0", step_name="left", content="L", success=True, stop=False),
            event(2, "ParallelExecutionCompleted", step_path="0", step_name="sides", content={}, success=True),
        ]
    )
    assert [child.step_name for child in done.completed["0"].steps] == ["left", "right"]
    assert not done.interrupted and done.blocked_by is None
