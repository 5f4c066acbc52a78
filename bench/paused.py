"""What a paused run costs the server: start N runs that each pause for a person, measure RSS.

    .venv/bin/python bench/paused.py              # 10,000 paused runs
    .venv/bin/python bench/paused.py --runs 500   # a quick look

A server subprocess (SQLite in a temporary folder) serves one workflow whose first step
asks for a confirmation. The runs are started over HTTP (``background=true``), each then
pauses; the figure is the growth of the server's resident memory from before the first
run to when all N are paused, per run. A paused run holds no task, thread or buffer, so
this should be what Python keeps after serving requests (allocator arenas), not a per-run
cost. The server is then restarted on the same log (RSS with N paused runs in the log and
none ever started in the process), and a sample of runs is continued to show they work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.servers import Proc, free_port

__all__ = ["main"]

SERVE = """
import sys
from runstream import HumanReview, Server, Step, Workflow
wf = Workflow(id="approve", name="Approve", steps=[
    Step(name="Approve", executor=lambda si: "approved " + str(si.input),
         human_review=HumanReview(requires_confirmation=True)),
])
Server(workflows=[wf], database_url="sqlite:///" + sys.argv[2]).serve(host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def serve(db: Path, folder: Path) -> Proc:
    port = free_port()
    return Proc("runstream", [sys.executable, "-c", SERVE, str(port), str(db)], port, folder / "server.log")


async def start_runs(url: str, count: int, concurrency: int = 32) -> list[str]:
    ids: list[str] = []
    queue = iter(range(count))

    async def worker(http: httpx.AsyncClient) -> None:
        for i in queue:
            reply = await http.post("/workflows/approve/runs", data={"message": f"r{i}", "background": "true"})
            reply.raise_for_status()
            ids.append(reply.json()["run_id"])

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return ids


async def paused_count(url: str, count: int) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        rows = (await http.get("/runs", params={"status": "paused", "limit": 1000})).json()
        if len(rows) < 1000:
            return len(rows)
        total, offset = 0, 0
        while rows := (await http.get("/runs", params={"status": "paused", "limit": 1000, "offset": offset})).json():
            total += len(rows)
            offset += 1000
        return total


async def continue_some(url: str, ids: list[str]) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        began = time.perf_counter()
        for run_id in ids:
            run = (await http.get(f"/runs/{run_id}")).json()
            answer = json.dumps([{"step_id": run["step_requirements"][-1]["step_id"], "confirmed": True}])
            done = await http.post(f"/workflows/approve/runs/{run_id}/continue",
                                   data={"step_requirements": answer, "stream": "false"})
            assert done.json()["status"] == "COMPLETED", done.text
        return (time.perf_counter() - began) / len(ids)


def main() -> None:
    for limit in ("RUNSTREAM_RUNS_PER_MINUTE", "RUNSTREAM_MAX_RUNS_PER_USER"):
        os.environ[limit] = "off"  # one client starts every run: the per-user limits would refuse them
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "paused.db"
        server = serve(db, folder)
        url = f"http://127.0.0.1:{server.port}"
        try:
            time.sleep(1.0)  # let start-up allocations settle before the baseline
            before = server.rss()
            began = time.perf_counter()
            ids = asyncio.run(start_runs(url, args.runs))
            while asyncio.run(paused_count(url, args.runs)) < args.runs:
                time.sleep(0.2)
            took = time.perf_counter() - began
            after = server.rss()
        finally:
            server.stop()
        restarted = serve(db, folder)
        try:
            url = f"http://127.0.0.1:{restarted.port}"
            time.sleep(1.0)
            fresh = restarted.rss()
            per_continue = asyncio.run(continue_some(url, ids[:100]))
        finally:
            restarted.stop()
    print(f"paused runs:                      {args.runs}")
    print(f"started and paused in:            {took:.1f} s ({args.runs / took:.0f} runs/s)")
    print(f"server RSS before / all paused:   {before / 2**20:.1f} MiB / {after / 2**20:.1f} MiB")
    print(f"growth per paused run:            {(after - before) / args.runs:.0f} bytes")
    print(f"RSS after a restart with them:    {fresh / 2**20:.1f} MiB")
    print(f"continue (stream=false), each:    {per_continue * 1000:.1f} ms over 100 runs")


if __name__ == "__main__":
    main()
