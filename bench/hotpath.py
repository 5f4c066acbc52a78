"""runstream's own event path in one process, no sockets and no model: CPU per event.

A step streams N chunks as fast as it can; ``subscribers`` readers follow the
run and take each event's WebSocket frame as the transport does (framed once,
shared). What is left is emit (number, serialize), the group-committed SQLite
append, fan-out, follow and framing: the part of the end-to-end figure that
runstream's own code decides.

    .venv/bin/python bench/hotpath.py --events 50000 --subscribers 1
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runstream import LocalHub, RunManager, SQLiteLog, Step, Workflow  # noqa: E402
from runstream.server.transport import shared_frame  # noqa: E402

__all__ = ["measure"]


async def measure(events: int, subscribers: int, db: Path) -> dict[str, float]:
    """Run one storm of ``events`` chunks; return CPU µs per produced event and per delivered frame."""

    async def chunks(_: object) -> object:
        for i in range(events):
            yield f"{i} "

    manager = RunManager(SQLiteLog(db), LocalHub(), [Workflow(id="storm", name="Storm", steps=[Step(name="s", executor=chunks)])])
    await manager.start()
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        record = await manager.start_run("storm", "go")

        async def reader() -> int:
            size = 0
            async for event in manager.follow(record.run_id):
                size += len(event.wire or shared_frame(event))
            return size

        sizes = await asyncio.wait_for(asyncio.gather(*(reader() for _ in range(subscribers))), 600)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        produced = await manager.log.next_index(record.run_id)
    finally:
        await manager.close()
    return {
        "events": produced,
        "cpu_us_per_event": cpu / produced * 1e6,
        "cpu_us_per_frame": cpu / (produced * subscribers) * 1e6,
        "events_per_s": produced / wall,
        "frame_bytes": sum(sizes) / (produced * subscribers),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--subscribers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        result = asyncio.run(measure(args.events, args.subscribers, Path(scratch) / "hot.db"))
    print(" ".join(f"{k}={v:.1f}" for k, v in result.items()))
