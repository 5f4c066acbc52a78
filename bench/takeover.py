"""Takeover time: how long after a replica shuts down its running runs log their next event on another.

Two ``RunManager``s in one process share a PostgreSQL log and a Redis (as two replicas
would). The first starts ``runs`` runs of a two-step workflow whose steps stream at a
steady pace (300 chunks, 10 ms apart), then shuts down gracefully in the middle of their
first step; the second
resumes them. Measured: from the start of the shutdown to each run's ``WorkflowResumed``
being in the log (min, median, max), and the steps run twice.

    .venv/bin/python bench/takeover.py --runs 1 10 50              # each run finishes its step first
    .venv/bin/python bench/takeover.py --runs 10 --grace 0         # interrupt mid-step at once
    .venv/bin/python bench/takeover.py --runs 10 --grace 0 --hub local   # no Redis: the next lease scan
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runstream import LocalHub, PostgresLog, RedisHub, RunManager, Step, StepInput, Workflow  # noqa: E402
from runstream.fanout.base import Hub  # noqa: E402

__all__ = ["measure"]


def workflow() -> Workflow:
    async def stream(step_input: StepInput) -> AsyncIterator[str]:
        for i in range(300):
            yield f"{i} "
            await asyncio.sleep(0.01)

    steps = [Step(name="first", executor=stream), Step(name="second", executor=stream)]
    return Workflow(id="takeover", name="Takeover", steps=steps)


async def measure(postgres_url: str, redis_url: str | None, runs: int, grace: float) -> dict[str, float]:
    """One shutdown with ``runs`` runs under way; seconds until each resumed elsewhere
    (``redis_url`` None: each replica has its own in-process hub, as without Redis)."""

    def hub() -> Hub:
        return RedisHub(redis_url) if redis_url else LocalHub()

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}search_path={schema}"
    try:
        first = RunManager(PostgresLog(url), hub(), [workflow()])
        second = RunManager(PostgresLog(url), hub(), [workflow()])
        await first.start()
        await second.start()
        try:
            ids = [(await first.start_run("takeover", f"run {i}")).run_id for i in range(runs)]
            while min([await first.log.next_index(r) for r in ids]) < 30:  # every run inside its first step
                await asyncio.sleep(0.01)
            began = time.perf_counter()
            ids = [r for r in ids if not (await first.log.get_run(r)).finished]  # type: ignore[union-attr]
            await first.close(grace)
            resumed: dict[str, float] = {}
            while len(resumed) < runs:
                for run_id in ids:
                    if run_id not in resumed and any(
                        e.name == "WorkflowResumed" for e in await second.log.read(run_id, 0, 10_000)
                    ):
                        resumed[run_id] = time.perf_counter() - began
                await asyncio.sleep(0.005)
            for run_id in ids:
                await second.wait(run_id)
            rerun = 0
            for run_id in ids:
                names = [e.name for e in await second.log.read(run_id, 0, 10_000)]
                rerun += names.count("StepStarted") - 2
        finally:
            await second.close()
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()
    times = sorted(resumed.values())
    return {"runs": len(times), "grace": grace, "hub": "redis" if redis_url else "local", "min_s": times[0], "median_s": statistics.median(times), "max_s": times[-1],
            "steps_rerun": rerun}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--grace", type=float, default=10.0, help="seconds a run has to reach its step boundary")
    parser.add_argument("--hub", choices=["redis", "local"], default="redis")
    args = parser.parse_args()
    for runs in args.runs:
        result = asyncio.run(measure(args.postgres_url, args.redis_url if args.hub == "redis" else None, runs, args.grace))
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
