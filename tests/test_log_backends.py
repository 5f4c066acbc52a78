"""The event log contract, run against every backend (SQLite file, PostgreSQL schema)."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
import time
from pathlib import Path

import asyncpg
import pytest

from runstream.events import StoredEvent
from runstream.log import EventLog, RunEnd, RunRecord, RunStatus, Session, SessionQuery, SQLiteLog, open_log

pytestmark = pytest.mark.anyio

DUPLICATE_ERRORS = (sqlite3.IntegrityError, asyncpg.UniqueViolationError)


def events(start: int, stop: int, final: str | None = None) -> list[StoredEvent]:
    """Events ``start..stop-1``; the last one named ``final`` when given."""
    made = [StoredEvent(i, "RunContent", f'{{"event_index": {i}, "content": "w{i} "}}') for i in range(start, stop)]
    if final is not None:
        made[-1] = StoredEvent(stop - 1, final, f'{{"event_index": {stop - 1}}}')
    return made


async def new_run(log: EventLog, run_id: str, **fields: object) -> RunRecord:
    record = RunRecord(run_id=run_id, workflow_id=str(fields.pop("workflow_id", "wf")), **fields)  # type: ignore[arg-type]
    await log.create_run(record)
    return record


async def test_create_and_get_run_round_trips_every_field(event_log: EventLog) -> None:
    await new_run(
        event_log, "r1", workflow_name="WF", session_id="s1", user_id="u1",
        input={"message": "hi", "n": [1, 2]}, owner="node-a", created_at=1000.5,
    )
    run = await event_log.get_run("r1")
    assert run is not None
    assert (run.workflow_id, run.workflow_name, run.session_id, run.user_id) == ("wf", "WF", "s1", "u1")
    assert run.input == {"message": "hi", "n": [1, 2]}
    assert (run.status, run.owner, run.created_at, run.event_count) == (RunStatus.RUNNING, "node-a", 1000.5, 0)
    assert run.updated_at >= run.created_at
    assert await event_log.get_run("nope") is None


async def test_append_then_read_in_order_and_count(event_log: EventLog) -> None:
    await new_run(event_log, "r1")
    await event_log.append({"r1": (events(0, 3), None)})
    await event_log.append({"r1": (events(3, 5), None)})
    assert await event_log.read("r1", 0, 100) == events(0, 5)
    assert await event_log.next_index("r1") == 5
    assert (await event_log.get_run("r1")).event_count == 5  # type: ignore[union-attr]
    assert await event_log.next_index("unknown") == 0
    assert await event_log.read("unknown", 0, 10) == []


@pytest.mark.parametrize("size", [1, 16, 17, 128, 300, 1000])
async def test_a_batch_of_any_size_is_written_whole_and_in_order(event_log: EventLog, size: int) -> None:
    await new_run(event_log, "r1")
    await event_log.append({"r1": (events(0, size), None)})
    await event_log.append({"r1": (events(size, size + 3), None)})
    assert await event_log.read("r1", 0, 2000) == events(0, size + 3)


async def test_big_events_among_small_ones_are_written_in_order(event_log: EventLog) -> None:
    batch = events(0, 40)
    for i in (0, 5, 6, 39):  # a run's last events carry its whole answer
        batch[i] = StoredEvent(i, "StepCompleted", f'{{"event_index": {i}, "content": "{"y" * 100_000}"}}')
    await new_run(event_log, "r1")
    await event_log.append({"r1": (batch, None)})
    assert await event_log.read("r1", 0, 100) == batch


async def test_read_pages_from_any_index(event_log: EventLog) -> None:
    await new_run(event_log, "r1")
    await event_log.append({"r1": (events(0, 25), None)})
    pages: list[list[StoredEvent]] = []
    start = 0
    while page := await event_log.read("r1", start, 10):
        pages.append(page)
        start = page[-1].index + 1
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [e for p in pages for e in p] == events(0, 25)
    assert await event_log.read("r1", 22, 10) == events(22, 25)
    assert await event_log.read("r1", 25, 10) == []


async def test_one_append_writes_several_runs_and_their_ends(event_log: EventLog) -> None:
    await new_run(event_log, "a")
    await new_run(event_log, "b")
    await event_log.append(
        {
            "a": (events(0, 4, final="WorkflowCompleted"), RunEnd(RunStatus.COMPLETED, output={"text": "done"})),
            "b": (events(0, 2), None),
        }
    )
    a, b = await event_log.get_run("a"), await event_log.get_run("b")
    assert a is not None and b is not None
    assert (a.status, a.output, a.error, a.event_count, a.finished) == (RunStatus.COMPLETED, {"text": "done"}, None, 4, True)
    assert (b.status, b.event_count) == (RunStatus.RUNNING, 2)
    await event_log.append({"b": (events(2, 3, final="WorkflowError"), RunEnd(RunStatus.ERROR, error="boom"))})
    b = await event_log.get_run("b")
    assert b is not None and (b.status, b.error, b.output) == (RunStatus.ERROR, "boom", None)


async def test_duplicate_index_is_rejected_and_the_whole_batch_rolled_back(event_log: EventLog) -> None:
    await new_run(event_log, "a")
    await new_run(event_log, "b")
    await event_log.append({"a": (events(0, 3), None)})
    with pytest.raises(DUPLICATE_ERRORS):
        await event_log.append(
            {
                "b": (events(0, 2, final="WorkflowCompleted"), RunEnd(RunStatus.COMPLETED)),
                "a": (events(2, 4), None),
            }
        )
    assert await event_log.read("a", 0, 10) == events(0, 3)
    assert await event_log.next_index("b") == 0
    assert (await event_log.get_run("b")).status == RunStatus.RUNNING  # type: ignore[union-attr]


async def test_concurrent_appends_of_the_same_index_keep_exactly_one(event_log: EventLog) -> None:
    await new_run(event_log, "r1")
    first = [StoredEvent(0, "WorkflowStarted", f'{{"writer": {w}}}') for w in range(4)]
    results = await asyncio.gather(*(event_log.append({"r1": ([e], None)}) for e in first), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, DUPLICATE_ERRORS) for r in results if r is not None)
    stored = await event_log.read("r1", 0, 10)
    assert len(stored) == 1 and stored[0] in first


async def test_list_runs_filters_orders_and_pages(event_log: EventLog) -> None:
    for i in range(7):
        await new_run(
            event_log, f"r{i}", workflow_id="wf" if i % 2 == 0 else "other",
            session_id=f"s{i % 3}", user_id="u1" if i < 4 else "u2", created_at=1000.0 + i,
        )
    await event_log.append({"r2": (events(0, 1, final="WorkflowCompleted"), RunEnd(RunStatus.COMPLETED))})

    async def ids(**filters: object) -> list[str]:
        return [r.run_id for r in await event_log.list_runs(**filters)]  # type: ignore[arg-type]

    assert await ids() == ["r6", "r5", "r4", "r3", "r2", "r1", "r0"]
    assert await ids(workflow_id="wf") == ["r6", "r4", "r2", "r0"]
    assert await ids(status=RunStatus.COMPLETED) == ["r2"]
    assert await ids(workflow_id="wf", status=RunStatus.RUNNING) == ["r6", "r4", "r0"]
    assert await ids(session_id="s0") == ["r6", "r3", "r0"]
    assert await ids(user_id="u2", workflow_id="other") == ["r5"]
    assert await ids(limit=3) == ["r6", "r5", "r4"]
    assert await ids(limit=3, offset=3) == ["r3", "r2", "r1"]
    assert await ids(limit=3, offset=6) == ["r0"]
    assert await ids(workflow_id="none") == []
    assert [r.run_id for r in await event_log.running_runs()] == ["r0", "r1", "r3", "r4", "r5", "r6"]


async def test_claim_run_succeeds_once_per_expected_owner(event_log: EventLog) -> None:
    await new_run(event_log, "r1", owner="dead-node")
    await new_run(event_log, "orphan")
    claims = await asyncio.gather(*(event_log.claim_run("r1", f"node-{i}", "dead-node") for i in range(3)))
    assert sorted(claims) == [False, False, True]
    winner = f"node-{claims.index(True)}"
    assert (await event_log.get_run("r1")).owner == winner  # type: ignore[union-attr]
    assert not await event_log.claim_run("r1", "late", "dead-node")
    assert await event_log.claim_run("orphan", "node-x", None)
    assert not await event_log.claim_run("orphan", "node-y", None)
    await event_log.append({"r1": (events(0, 1, final="WorkflowCancelled"), RunEnd(RunStatus.CANCELLED))})
    assert not await event_log.claim_run("r1", "node-z", winner)
    assert not await event_log.claim_run("unknown", "node-z", None)


async def test_leases_say_which_owners_are_alive(event_log: EventLog) -> None:
    assert await event_log.live_owners() == set()
    await event_log.renew_lease("node-a", 60)
    await event_log.renew_lease("node-b", 60)
    await event_log.renew_lease("node-a", 120)
    assert await event_log.live_owners() == {"node-a", "node-b"}
    await event_log.release_lease("node-a")
    await event_log.renew_lease("node-c", -1)  # a lease that has already run out
    assert await event_log.live_owners() == {"node-b"}
    await event_log.release_lease("unknown")
    assert await event_log.live_owners() == {"node-b"}


async def test_prune_runs_drops_old_finished_runs_only(event_log: EventLog) -> None:
    for run_id in ("done1", "done2", "done3", "live"):
        await new_run(event_log, run_id)
    ends = {r: (events(0, 2, final="WorkflowCompleted"), RunEnd(RunStatus.COMPLETED, output=r)) for r in ("done1", "done2", "done3")}
    await event_log.append({**ends, "live": (events(0, 2), None)})
    assert await event_log.prune_runs(finished_before=0.0, keep_outputs=False) == 0
    later = time.time() + 60
    assert await event_log.prune_runs(later, keep_outputs=True, limit=2) == 2
    assert await event_log.prune_runs(later, keep_outputs=True) == 1
    assert await event_log.prune_runs(later, keep_outputs=True) == 0
    kept = await event_log.get_run("done1")
    assert kept is not None and (kept.output, kept.event_count) == ("done1", 0)
    assert await event_log.read("done2", 0, 10) == []
    assert await event_log.prune_runs(later, keep_outputs=False) == 3
    assert [r.run_id for r in await event_log.list_runs()] == ["live"]
    assert await event_log.read("live", 0, 10) == events(0, 2)


async def test_sessions_save_merge_and_list(event_log: EventLog) -> None:
    assert await event_log.get_session("s1") is None
    await event_log.save_session(Session("s1", "wf", "u1", {"count": 1}))
    await event_log.save_session(Session("s2", "other", "u2", {}))
    await event_log.save_session(Session("s1", None, None, {"count": 2, "notes": ["a"]}))
    s1 = await event_log.get_session("s1")
    assert s1 is not None
    assert (s1.workflow_id, s1.user_id, s1.state) == ("wf", "u1", {"count": 2, "notes": ["a"]})
    assert s1.updated_at >= s1.created_at > 0
    assert [s.session_id for s in await event_log.list_sessions()] == ["s1", "s2"]
    assert [s.session_id for s in await event_log.list_sessions(SessionQuery(workflow_id="other"))] == ["s2"]
    assert [s.session_id for s in await event_log.list_sessions(SessionQuery(user_id="u1", workflow_id="wf"))] == ["s1"]
    assert [s.session_id for s in await event_log.list_sessions(SessionQuery(limit=1, offset=1))] == ["s2"]


async def sessions_of(log: EventLog, **query: object) -> list[str]:
    return [s.session_id for s in await log.list_sessions(SessionQuery(**query))]  # type: ignore[arg-type]


async def test_a_run_opens_its_session_named_after_its_input(event_log: EventLog) -> None:
    await new_run(event_log, "r1", session_id="s1", user_id="u1", input="billing 4.0.0", created_at=10.0)
    s1 = await event_log.get_session("s1")
    assert s1 is not None and (s1.session_name, s1.workflow_id, s1.user_id, s1.state) == ("billing 4.0.0", "wf", "u1", {})
    await new_run(event_log, "r2", session_id="s1", input="a second input")
    await event_log.save_session(Session("s1", "wf", "u1", {"n": 1}))
    again = await event_log.get_session("s1")
    assert again is not None and (again.session_name, again.state, again.created_at) == ("billing 4.0.0", {"n": 1}, s1.created_at)
    assert again.updated_at >= s1.updated_at
    await new_run(event_log, "r3", session_id="s2", input={"topic": "tides"})
    s2 = await event_log.get_session("s2")
    assert s2 is not None and s2.session_name == '{"topic":"tides"}'
    assert await event_log.count_sessions() == 2


async def test_sessions_filter_sort_count_and_page(event_log: EventLog) -> None:
    for i, (name, wf, user) in enumerate([("Alpha 100%", "a", "u1"), ("beta_1", "a", "u2"), ("Gamma alpha", "b", "u1")]):
        await event_log.save_session(Session(f"s{i}", wf, user, {}, created_at=100.0 + i, session_name=name))
    assert await sessions_of(event_log, sort_by="created_at") == ["s2", "s1", "s0"]
    assert await sessions_of(event_log, sort_by="created_at", descending=False) == ["s0", "s1", "s2"]
    assert await sessions_of(event_log, sort_by="session_name", descending=False) == ["s0", "s2", "s1"]
    assert await sessions_of(event_log, session_name="ALPHA", sort_by="created_at") == ["s2", "s0"]
    assert await sessions_of(event_log, session_name="100%") == ["s0"]  # % and _ are matched literally
    assert await sessions_of(event_log, session_name="a_a") == []  # "a a" in "Gamma alpha" if _ were a wildcard
    assert await sessions_of(event_log, session_name="a_1") == ["s1"]
    assert await sessions_of(event_log, workflow_id="a", user_id="u1") == ["s0"]
    assert await event_log.count_sessions(SessionQuery(workflow_id="a", limit=1)) == 2
    assert await event_log.count_sessions(SessionQuery(session_name="alpha")) == 2
    assert await sessions_of(event_log, sort_by="created_at", limit=2, offset=2) == ["s0"]
    with pytest.raises(ValueError, match="cannot be sorted by 'state'"):
        SessionQuery(sort_by="state")


async def test_rename_session(event_log: EventLog) -> None:
    await new_run(event_log, "r1", session_id="s1", input="old")
    assert await event_log.rename_session("s1", "new name") is True
    s1 = await event_log.get_session("s1")
    assert s1 is not None and s1.session_name == "new name"
    await event_log.save_session(Session("s1", "wf", None, {"kept": True}))
    s1 = await event_log.get_session("s1")
    assert s1 is not None and (s1.session_name, s1.state) == ("new name", {"kept": True})
    assert await event_log.rename_session("nope", "x") is False


async def test_delete_sessions_takes_their_runs_and_events_unless_one_is_running(event_log: EventLog) -> None:
    for run_id, session_id in [("r1", "s1"), ("r2", "s1"), ("r3", "s2"), ("r4", "s3")]:
        await new_run(event_log, run_id, session_id=session_id)
    done = RunEnd(RunStatus.COMPLETED, output="x")
    await event_log.append({r: (events(0, 2, final="WorkflowCompleted"), done) for r in ("r1", "r2", "r4")})
    await event_log.append({"r3": (events(0, 2), None)})  # r3 is still running
    assert await event_log.delete_sessions(["s1", "s2"]) == {"s2"}
    assert await event_log.get_session("s1") is not None and await event_log.read("r1", 0, 10) != []
    assert await event_log.delete_sessions(["s1", "s3", "s1", "missing"]) == set()
    assert (await event_log.get_session("s1"), await event_log.get_session("s3")) == (None, None)
    assert (await event_log.get_run("r1"), await event_log.get_run("r4")) == (None, None)
    assert await event_log.read("r2", 0, 10) == []
    assert [r.run_id for r in await event_log.list_runs()] == ["r3"]
    assert await event_log.read("r3", 0, 10) == events(0, 2)
    assert await event_log.delete_sessions([]) == set()
    await new_run(event_log, "r5", session_id="s5", status=RunStatus.QUEUED)  # it will run: busy too
    await new_run(event_log, "r6", session_id="s6", status=RunStatus.PAUSED)  # waits for a person: deletable
    assert await event_log.delete_sessions(["s5", "s6"]) == {"s5"}
    assert await event_log.delete_sessions(["s6"]) == set() and await event_log.get_run("r6") is None


async def test_a_log_written_before_sessions_had_names_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn, conn:  # `with conn` commits; closing() closes
        conn.execute(
            "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, workflow_id TEXT, user_id TEXT, "
            "state TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL)"
        )
        conn.execute("INSERT INTO sessions VALUES ('s1', 'wf', 'u1', '{\"a\": 1}', 1.0, 2.0)")
    log = SQLiteLog(path)
    await log.open()
    try:
        s1 = await log.get_session("s1")
        assert s1 is not None and (s1.state, s1.session_name) == ({"a": 1}, None)
        assert await log.rename_session("s1", "named") is True
    finally:
        await log.close()


async def test_a_reopened_log_keeps_everything(log_url: str) -> None:
    first = open_log(log_url)
    await first.open()
    await new_run(first, "r1")
    await first.append({"r1": (events(0, 3, final="WorkflowCompleted"), RunEnd(RunStatus.COMPLETED, output="x"))})
    await first.close()
    second = open_log(log_url)
    await second.open()
    try:
        assert await second.read("r1", 0, 10) == events(0, 3, final="WorkflowCompleted")
        run = await second.get_run("r1")
        assert run is not None and (run.status, run.output) == (RunStatus.COMPLETED, "x")
    finally:
        await second.close()


async def test_replicas_opening_one_fresh_log_together_all_succeed(log_url: str) -> None:
    logs = [open_log(log_url) for _ in range(3)]
    try:
        await asyncio.gather(*(log.open() for log in logs))
        await new_run(logs[0], "r1")
        assert (await logs[2].get_run("r1")) is not None
    finally:
        for log in logs:
            await log.close()


async def test_small_sqlite_appends_keep_the_wal_bounded(tmp_path: Path) -> None:
    """Appends small enough to commit on the event loop leave checkpoints to the writer
    thread: the WAL must still be copied back and reused rather than grow with the run."""
    log = SQLiteLog(tmp_path / "wal.db")
    await log.open()
    try:
        await new_run(log, "r1")
        payload = "x" * 2000
        for i in range(6000):  # ~100 MB of WAL if nothing checkpointed
            await log.append({"r1": ([StoredEvent(i, "RunContent", payload)], None)})
        wal_mb = (tmp_path / "wal.db-wal").stat().st_size / 2**20
        assert await log.next_index("r1") == 6000
    finally:
        await log.close()
    assert wal_mb < 50


async def test_a_paused_run_is_taken_back_exactly_once_however_many_try(event_log: EventLog) -> None:
    """Two continues of one pause (or a continue and its timeout): one wins, atomically."""
    await new_run(event_log, "p1", owner="node-a")
    await event_log.append({"p1": (events(0, 2, "WorkflowPaused"), RunEnd(RunStatus.PAUSED, pause_expires_at=None))})
    run = await event_log.get_run("p1")
    assert run is not None and run.status == RunStatus.PAUSED
    assert "p1" not in {r.run_id for r in await event_log.running_runs()}  # recovery leaves it alone
    wins = await asyncio.gather(*(event_log.take_paused("p1", f"node-{i}") for i in range(8)))
    assert sorted(wins) == [False] * 7 + [True]
    run = await event_log.get_run("p1")
    assert run is not None and run.status == RunStatus.RUNNING and run.owner == f"node-{wins.index(True)}"
    assert not await event_log.take_paused("p1", "node-x")  # running now: not paused any more
    assert not await event_log.take_paused("missing", "node-x")


async def test_expired_pauses_lists_due_timeouts_oldest_first(event_log: EventLog) -> None:
    for run_id, expires in (("late", 300.0), ("soon", 100.0), ("never", None), ("later", 10_000.0)):
        await new_run(event_log, run_id)
        await event_log.append({run_id: (events(0, 1, "WorkflowPaused"), RunEnd(RunStatus.PAUSED, pause_expires_at=expires))})
    assert await event_log.expired_pauses(500.0) == ["soon", "late"]
    assert await event_log.expired_pauses(500.0, limit=1) == ["soon"]
    assert await event_log.take_paused("soon", "node-a")
    assert await event_log.expired_pauses(500.0) == ["late"]  # a continued run's timer is gone


async def test_reopen_pause_gives_a_taken_run_its_pause_and_timer_back(event_log: EventLog) -> None:
    await new_run(event_log, "p2")
    await event_log.append({"p2": (events(0, 1, "WorkflowPaused"), RunEnd(RunStatus.PAUSED, pause_expires_at=100.0))})
    assert await event_log.take_paused("p2", "node-a")
    assert not await event_log.reopen_pause("p2", "node-b", 100.0)  # only the run's holder gives it back
    assert await event_log.reopen_pause("p2", "node-a", 100.0)
    run = await event_log.get_run("p2")
    assert run is not None and run.status == RunStatus.PAUSED
    assert await event_log.expired_pauses(500.0) == ["p2"]
    assert not await event_log.reopen_pause("p2", "node-a", 100.0)  # paused already
    assert await event_log.take_paused("p2", "node-c")


async def test_an_old_sqlite_log_gets_the_pause_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, workflow_name TEXT, session_id TEXT, "
        "user_id TEXT, status TEXT NOT NULL, input TEXT, output TEXT, error TEXT, owner TEXT, "
        "created_at REAL NOT NULL, updated_at REAL NOT NULL)"
    )
    conn.execute("INSERT INTO runs VALUES ('old', 'wf', NULL, NULL, NULL, 'completed', NULL, NULL, NULL, NULL, 1, 1)")
    conn.commit()
    conn.close()
    log = SQLiteLog(path)
    await log.open()
    try:
        await new_run(log, "new")
        await log.append({"new": (events(0, 1, "WorkflowPaused"), RunEnd(RunStatus.PAUSED, pause_expires_at=5.0))})
        assert await log.expired_pauses(10.0) == ["new"]
        assert (await log.get_run("old")).status == "completed"  # type: ignore[union-attr]
    finally:
        await log.close()
