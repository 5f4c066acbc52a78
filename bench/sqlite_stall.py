"""The worst event-loop stall while a retention prune of a large SQLite log runs during a live storm.

Small appends commit on the event loop's thread. If that connection waited for
SQLite's write lock while the writer thread deletes a hundred old runs in one
transaction, every client of the server would stall for as long. This builds a
log of old finished runs, starts live runs that stream small chunks (each a
small inline commit) with a follower each, measures how late a 1 ms timer on
the event loop fires, first with the storm alone, then while
``apply_retention`` prunes the old runs, and checks every follower got every
event. It also reports the longest time no follower received an event during
the prune: appends wait for each prune transaction (one writer), off the loop. ``--wait-on-loop`` makes the loop's connection wait for the lock (30 s
busy timeout, as before the fix) to show what that would cost.

    .venv/bin/python bench/sqlite_stall.py                        # the shipped behaviour
    .venv/bin/python bench/sqlite_stall.py --wait-on-loop         # the loop waits on the busy handler
    .venv/bin/python bench/sqlite_stall.py --prune-batch 100   # prune transactions as large as before
    .venv/bin/python bench/sqlite_stall.py --runs 200 --events 2000 --storm 4
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import runstream.log.retention as retention  # noqa: E402
import runstream.log.sqlite as sqlite_log  # noqa: E402
from runstream import LocalHub, RetentionPolicy, RunManager, SQLiteLog, Step, Workflow, apply_retention  # noqa: E402

__all__ = ["build_old_runs", "measure"]

PAYLOAD = "x" * 200


def build_old_runs(db: Path, runs: int, events: int) -> None:
    """``runs`` completed runs of ``events`` events each, finished long ago (retention's prey)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    for r in range(runs):
        run_id = f"old-{r}"
        conn.execute(
            "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, "old", "Old", None, None, "completed", "null", '"done"', None, None, 1.0, 1.0),
        )
        conn.executemany(
            "INSERT INTO events VALUES (?,?,?,?)",
            ((run_id, i, "RunContent", f'{{"event":"RunContent","event_index":{i},"content":"{PAYLOAD}"}}')
             for i in range(events)),
        )
    conn.execute("COMMIT")
    conn.close()


class LagMonitor:
    """How late a timer of ``tick`` seconds fires on this event loop, sample by sample."""

    def __init__(self, tick: float = 0.001) -> None:
        self.tick = tick
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.tick)
            self.samples.append(time.perf_counter() - start - self.tick)

    def start(self) -> None:
        self.samples = []
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, float]:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        ordered = sorted(self.samples)
        return {
            "samples": len(ordered),
            "max_ms": ordered[-1] * 1e3,
            "p99_ms": ordered[int(len(ordered) * 0.99)] * 1e3,
            "median_ms": statistics.median(ordered) * 1e3,
        }


async def measure(db: Path, storm: int, baseline_s: float) -> dict[str, Any]:
    """The storm alone for ``baseline_s``, then the storm while the old runs are pruned."""
    stop = asyncio.Event()

    async def chunks(_: object) -> AsyncIterator[str]:
        i = 0
        while not stop.is_set():
            yield f"{i} "
            i += 1
            await asyncio.sleep(0.001)  # a trickle: each chunk its own small (inline) commit

    workflow = Workflow(id="storm", name="Storm", steps=[Step(name="s", executor=chunks)])
    log = SQLiteLog(db)
    manager = RunManager(log, LocalHub(), [workflow])
    await manager.start()
    monitor = LagMonitor()
    try:
        records = [await manager.start_run("storm", "go") for _ in range(storm)]

        arrivals: list[float] = []

        async def follower(run_id: str) -> list[int]:
            indices = []
            async for event in manager.follow(run_id):
                indices.append(event.index)
                arrivals.append(time.perf_counter())
            return indices

        followers = [asyncio.create_task(follower(r.run_id)) for r in records]
        monitor.start()
        await asyncio.sleep(baseline_s)
        baseline = await monitor.stop()

        fallbacks0 = log.inline_fallbacks
        monitor.start()
        t0 = time.perf_counter()
        pruned = await apply_retention(log, RetentionPolicy(keep_days=1))
        t1 = time.perf_counter()
        prune_s = t1 - t0
        during = await monitor.stop()
        fallbacks = log.inline_fallbacks - fallbacks0

        stop.set()
        seen = await asyncio.wait_for(asyncio.gather(*followers), 120)
    finally:
        await manager.close()
    gapless = all(indices == list(range(len(indices))) for indices in seen)
    window = sorted(t for t in arrivals if t0 <= t <= t1)
    during["delivery_gap_ms"] = max((b - a for a, b in zip([t0, *window], [*window, t1])), default=0.0) * 1e3
    return {
        "baseline": baseline,
        "during_prune": during,
        "pruned_runs": pruned,
        "prune_s": prune_s,
        "inline_fallbacks": fallbacks,
        "storm_events": sum(len(s) for s in seen),
        "every_follower_gapless": gapless,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="old finished runs to prune")
    parser.add_argument("--events", type=int, default=1000, help="events per old run")
    parser.add_argument("--storm", type=int, default=4, help="live runs streaming during the prune")
    parser.add_argument("--baseline", type=float, default=3.0, help="seconds of storm alone, first")
    parser.add_argument("--wait-on-loop", action="store_true",
                        help="the loop's connection waits for the write lock (30 s), as before the fix")
    parser.add_argument("--prune-batch", type=int, default=retention.PRUNE_BATCH,
                        help="runs pruned per transaction (default %(default)s)")
    args = parser.parse_args()
    retention.PRUNE_BATCH = args.prune_batch
    if args.wait_on_loop:
        sqlite_log.INLINE_BUSY_TIMEOUT = sqlite_log.BUSY_TIMEOUT
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "big.db"

        async def prepare() -> None:
            log = SQLiteLog(db)
            await log.open()
            await log.close()

        asyncio.run(prepare())
        t0 = time.perf_counter()
        build_old_runs(db, args.runs, args.events)
        size_mb = db.stat().st_size / 1e6
        print(f"built {args.runs} old runs x {args.events} events ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        result = asyncio.run(measure(db, args.storm, args.baseline))
    mode = "loop waits on the busy handler" if args.wait_on_loop else "loop never waits (shipped)"
    print(f"mode: {mode}, {args.prune_batch} runs per prune transaction")
    for window in ("baseline", "during_prune"):
        r = result[window]
        print(f"  {window:13s} loop lag: max {r['max_ms']:7.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
              f"median {r['median_ms']:5.2f} ms  ({r['samples']} ticks)")
    print(f"  longest time no follower received an event during the prune: "
          f"{result['during_prune']['delivery_gap_ms']:.0f} ms")
    print(f"  pruned {result['pruned_runs']} runs in {result['prune_s']:.2f} s; "
          f"{result['inline_fallbacks']} appends went to the writer thread; "
          f"{result['storm_events']} storm events, every follower gapless: {result['every_follower_gapless']}")


if __name__ == "__main__":
    main()
