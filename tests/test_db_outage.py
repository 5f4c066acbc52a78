"""A run whose log writes fail while the database is away never hangs: once the database
answers again, its own (still alive) owner gives it up and recovery resumes it. And no
server takes a run it cannot run: recovery leaves runs of workflows it does not serve.

The outage is real: PostgreSQL behind a TCP proxy that the test takes down (every
connection aborted, new ones refused) and brings back, as a database restart does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest

from runstream import LocalHub, RunManager, RunRecord, SQLiteLog, Step, StepInput, Workflow
from runstream.log.postgres import PostgresLog
from tests.outageproxy import outage_proxy
from tests.runkit import Valve
from tests.waiting import until

pytestmark = pytest.mark.anyio


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("runstream")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def via(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}" if parts.username else f"127.0.0.1:{port}"))


def gated(valve: Valve) -> Workflow:
    async def produce(step_input: StepInput) -> AsyncIterator[str]:
        for i in range(5):
            yield f"a{i} "
        await valve.wait()
        for i in range(5):
            yield f"b{i} "

    return Workflow(id="gated", name="Gated", steps=[Step(name="Produce", executor=produce), Step(name="Done", executor=lambda si: "done")])


async def test_a_run_cut_off_by_a_database_outage_resumes_on_its_own_owner_once_it_is_back(
    postgres_url: str, valve: Valve, lines: Lines
) -> None:
    direct = PostgresLog(postgres_url)
    await direct.open()
    upstream = urlsplit(postgres_url).port or 5432
    with outage_proxy(upstream) as proxy:
        manager = RunManager(PostgresLog(via(postgres_url, proxy.port)), LocalHub(), [gated(valve)], lease_ttl=1.5)
        await manager.start()
        try:
            record = await manager.start_run("gated", "go")
            await until(valve.reached.is_set, what="the run to reach the valve")
            await until(lambda: _count(direct, record.run_id, 7), what="its first events in the log")
            proxy.down()
            valve.open()  # its next events cannot be written: the run stops, left to recovery
            await until(lambda: any(f"run {record.run_id}:" in line and "left to recovery" in line for line in lines.lines),
                        what="the failed write")
            proxy.up()
            await until(lambda: _status(direct, record.run_id, "completed"), timeout=40, what="the run to complete")
        finally:
            await manager.close()
    events = [orjson.loads(e.data) for e in await direct.read(record.run_id, 0, 1000)]
    await direct.close()
    assert [e["event_index"] for e in events] == list(range(len(events)))  # nothing lost, nothing twice
    names = [e["event"] for e in events]
    assert names.count("WorkflowCompleted") == 1 and names[-1] == "WorkflowCompleted"
    assert names.count("WorkflowResumed") == 1
    assert events[-1]["content"] == "done"
    assert any(f"resuming run {record.run_id}" in line for line in lines.lines)


async def _count(log: PostgresLog, run_id: str, at_least: int) -> bool:
    return await log.next_index(run_id) >= at_least


async def _status(log: PostgresLog, run_id: str, status: str) -> bool:
    run = await log.get_run(run_id)
    return run is not None and run.status == status


async def test_recovery_leaves_a_run_of_a_workflow_it_does_not_serve_to_a_server_that_does(tmp_path: Path) -> None:
    """A run orphaned by a dead owner is not ended by a server without its workflow (it used to
    end it with "not served here any more"); the next server that serves it resumes it."""
    db = tmp_path / "runs.db"
    valve = Valve()
    valve.open()
    other = Workflow(id="other", name="Other", steps=[Step(name="Other", executor=lambda si: "other")])
    log = SQLiteLog(db)
    await log.open()
    orphan = RunRecord(run_id="orphan-1", workflow_id="gated", workflow_name="Gated", input="go",
                       owner="gone-host:1:dead", created_at=1.0)
    await log.create_run(orphan)
    await log.close()

    stranger = RunManager(SQLiteLog(db), LocalHub(), [other])
    await stranger.start()
    try:
        assert await stranger.recovery.scan() == []
        record = await stranger.get_run("orphan-1")
        assert (record.status, record.owner, record.event_count) == ("running", "gone-host:1:dead", 0)
    finally:
        await stranger.close()

    server = RunManager(SQLiteLog(db), LocalHub(), [gated(valve), other])
    await server.start()  # its start-up scan takes the orphan
    try:
        await until(lambda: _ended(server, "orphan-1"), what="the orphan to be resumed and to end")
        record = await server.get_run("orphan-1")
        events = [e.name for e in await server.log.read("orphan-1", 0, 100)]
    finally:
        await server.close()
    assert record.status == "completed" and record.output == "done"
    assert events[0] == "WorkflowStarted" and events[-1] == "WorkflowCompleted"


async def _ended(manager: RunManager, run_id: str) -> bool:
    return (await manager.get_run(run_id)).finished
