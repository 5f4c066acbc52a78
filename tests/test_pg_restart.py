"""A real PostgreSQL restart mid-run (issue 17, point 4): a demo server process on a
PostgreSQL of the test's own, capped at one run with two more queued, while
``pg_ctl restart -m fast`` cuts every connection. The server survives, the running run is
resumed from its log once the database answers, the queued runs start after it; nothing
committed is lost or written twice. Prints its figures (docs/deploy.md#faults quotes them):
``pytest tests/test_pg_restart.py -s``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runstream import Client
from runstream import events as ev
from tests.conftest import IN_CI
from tests.pgserver import PrivatePostgres, postgres_bin
from tests.processes import Replica
from tests.waiting import until

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]


@pytest.fixture
def own_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        if IN_CI:
            pytest.fail("PostgreSQL's initdb is not installed (/usr/lib/postgresql/*/bin), and CI requires it")
        pytest.skip("PostgreSQL's initdb is not installed")
    server = PrivatePostgres(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_postgres_restart_mid_run_loses_nothing_and_the_queue_goes_on(
    own_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    env = {"RUNSTREAM_MAX_CONCURRENT_RUNS": "1", "RUNSTREAM_MAX_QUEUED_RUNS": "10"}
    replica = Replica(own_postgres.url, "", tmp_path / "server.log", pace="0.02", **env).start()
    url = f"http://127.0.0.1:{replica.port}"
    try:
        async with Client(url) as client:
            run_ids = [await client.start("content-creation-workflow", f"topic {i}") for i in range(3)]
            assert [(await client.get_run(r)).status for r in run_ids] == ["running", "queued", "queued"]

            async def under_way() -> bool:
                return (await client.get_run(run_ids[0])).event_count >= 30

            await until(under_way, what="the first run to be under way")
            restart_began = time.time()
            own_postgres.restart()
            restart_done = time.time()
            transcripts = [[e.data async for e in client.follow(run_id)] for run_id in run_ids]
            statuses = [(await client.get_run(r)).status for r in run_ids]
        assert replica.proc is not None and replica.proc.poll() is None  # the server survived
    finally:
        replica.kill()
    assert statuses == ["completed"] * 3
    for events in transcripts:
        names = [e["event"] for e in events]
        assert [e["event_index"] for e in events] == list(range(len(events)))  # nothing lost, nothing twice
        assert names.count(ev.WORKFLOW_STARTED) == 1 and names.count(ev.WORKFLOW_COMPLETED) == 1
    first = transcripts[0]
    resumed = [e for e in first if e["event"] == ev.WORKFLOW_RESUMED]
    stamps = [e["created_at_ms"] / 1000 for e in first]
    figures: dict[str, Any] = {
        "restart_seconds": round(restart_done - restart_began, 2),
        "resumed_after_the_restart_seconds": round(resumed[0]["created_at_ms"] / 1000 - restart_done, 2) if resumed else None,
        "longest_gap_between_events_seconds": round(max(b - a for a, b in zip(stamps, stamps[1:])), 2),
        "events_of_the_cut_run": len(first),
        "resumed": len(resumed),
        "steps_rerun": sum(len(e.get("interrupted_steps", [])) for e in resumed),
        "completed_steps_rerun": 0,
    }
    print(f"\nPostgreSQL restart mid-run: {figures}")
    assert len(resumed) <= 1
