"""Queue throughput: runs per second through a replica's ``max_concurrent_runs``.

``replicas`` ``RunManager``s in one process share one log (as replicas share one
PostgreSQL; SQLite has one), each capped at ``cap`` concurrent runs. ``runs`` runs of a
one-step workflow are started at once, spread over the replicas, so all but the first
``cap`` per replica are queued in the database; each step waits ``work`` seconds (0: the
queue's own cost, nothing else). Measured: from the first start to the last run's end
being in the log, runs/s; and, for the queued runs, the wait from being queued to being
started (from their ``WorkflowQueued`` and ``WorkflowStarted`` timestamps). Checked: each
run started once and completed.

    .venv/bin/python bench/queue_throughput.py --backend sqlite --runs 1000 --cap 10
    .venv/bin/python bench/queue_throughput.py --backend postgres --runs 1000 --cap 10 --replicas 1 2
    .venv/bin/python bench/queue_throughput.py --backend postgres --runs 200 --cap 10 --work 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runstream import LocalHub, RunManager, RunStatus, Step, StepInput, Workflow, open_log  # noqa: E402
from runstream import events as ev  # noqa: E402

__all__ = ["measure"]


def workflow(work: float) -> Workflow:
    async def step(step_input: StepInput) -> str:
        if work:
            await asyncio.sleep(work)
        return f"done {step_input.input}"

    return Workflow(id="queued", name="Queued", steps=[Step(name="Work", executor=step)])


async def measure(url: str, replicas: int, runs: int, cap: int, work: float) -> dict[str, float]:
    managers = [
        RunManager(open_log(url), LocalHub(), [workflow(work)], max_concurrent_runs=cap, max_queued_runs=None)
        for _ in range(replicas)
    ]
    for manager in managers:
        await manager.start()
    log = managers[0].log
    try:
        began = time.perf_counter()
        records = await asyncio.gather(*(managers[i % replicas].start_run("queued", f"m{i}") for i in range(runs)))
        run_ids = [record.run_id for record in records]
        while True:
            counts = await log.count_runs()
            if counts.get(("queued", RunStatus.COMPLETED), 0) == runs:
                break
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - began
        waits, starts = [], 0
        for run_id in run_ids:
            events = await log.read(run_id, 0, 3)
            names = [e.name for e in events]
            starts += names.count(ev.WORKFLOW_STARTED)
            if names[0] == ev.WORKFLOW_QUEUED:
                queued, started = (orjson.loads(e.data)["created_at_ms"] for e in events[:2])
                waits.append((started - queued) / 1000)
        assert starts == runs, f"{starts} starts for {runs} runs"
    finally:
        for manager in managers:
            await manager.close()
    return {
        "runs_per_s": runs / elapsed,
        "seconds": elapsed,
        "queued": len(waits),
        "wait_median": statistics.median(waits) if waits else 0.0,
        "wait_max": max(waits, default=0.0),
    }


async def on_postgres(postgres_url: str, replicas: int, runs: int, cap: int, work: float) -> dict[str, float]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}search_path={schema}"
        return await measure(url, replicas, runs, cap, work)
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--cap", type=int, nargs="+", default=[10])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1])
    parser.add_argument("--work", type=float, default=0.0, help="seconds each run's step waits")
    args = parser.parse_args()
    for replicas in args.replicas:
        for cap in args.cap:
            if args.backend == "sqlite":
                if replicas != 1:
                    raise SystemExit("SQLite serves one process: --replicas 1")
                with tempfile.TemporaryDirectory() as folder:
                    result = await measure(f"sqlite:///{folder}/queue.db", 1, args.runs, cap, args.work)
            else:
                result = await on_postgres(args.postgres_url, replicas, args.runs, cap, args.work)
            print(
                f"{args.backend} replicas={replicas} cap={cap} runs={args.runs} work={args.work:g}s: "
                f"{result['runs_per_s']:.0f} runs/s ({result['seconds']:.2f} s), {result['queued']:.0f} queued, "
                f"wait median {result['wait_median']:.2f} s, max {result['wait_max']:.2f} s",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
