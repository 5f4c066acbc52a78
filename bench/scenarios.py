"""The seven scenarios of issue #7, each measured on a fresh server process of one system.

Every scenario returns one row: events, seconds, events/s, server CPU µs per
delivered event (from /proc), latency percentiles, server memory, and whether
every stream the clients read was gapless and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import workers
from bench.client import Tally, follow_run, start_run
from bench.servers import Proc, start_system

__all__ = ["Sizes", "QUICK", "FULL", "Bench", "SCENARIOS"]

STORM, CONTENT = "token-storm", "content-creation-workflow"


@dataclass(frozen=True)
class Sizes:
    storm: int
    latency_tokens: int
    fanout_subscribers: int
    fanout_events: int
    replay_events: int
    connections: int
    long_events: int
    agno_long_events: int
    many_runs: int
    storm_runs: int
    client_processes: int = 2


FULL = Sizes(10_000, 2_000, 1_000, 2_000, 10_000, 10_000, 1_000_000, 50_000, 200, 5)
QUICK = Sizes(10_000, 600, 200, 1_000, 10_000, 2_000, 100_000, 20_000, 50, 3)


class MemorySampler:
    """Samples a server's RSS every 50 ms in a thread: peak and the series, to see growth."""

    def __init__(self, proc: Proc) -> None:
        self.proc, self.samples = proc, [proc.rss()]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(OSError):
                self.samples.append(self.proc.rss())

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6 if ordered else float("nan")


def row(scenario: str, system: str, events: int, seconds: float, cpu: float, ok: bool, **extra: Any) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "system": system,
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds) if seconds else 0,
        "cpu_us_per_event": round(cpu / events * 1e6, 1) if events else None,
        "ok": ok,
        **extra,
    }


class Bench:
    """What every scenario shares: the model server, sizes, scratch and log directories, the frame size."""

    def __init__(self, model: Proc, sizes: Sizes, scratch: Path, logs: Path) -> None:
        self.model, self.sizes, self.scratch, self.logs = model, sizes, scratch, logs
        self.frame_size = 600

    def db(self) -> Path:
        return self.scratch / f"{uuid.uuid4().hex[:8]}.db"

    @contextlib.contextmanager
    def server(self, system: str, db: Path | None = None) -> Iterator[Proc]:
        proc = start_system(system, self.model, db or self.db(), self.logs, self.frame_size)
        try:
            yield proc
        finally:
            proc.stop()

    @staticmethod
    def url(proc: Proc) -> str:
        return f"ws://127.0.0.1:{proc.port}/workflows/ws"

    def start(self, proc: Proc, workflow: str, spec: str, timeout: float = 600) -> Tally:
        return asyncio.run(start_run(self.url(proc), workflow, spec, str(uuid.uuid4()), timeout))


def storm(b: Bench, system: str) -> dict[str, Any]:
    """One agent step streaming as fast as it can; CPU per event and events/s (the median of ``storm_runs`` runs)."""
    n = b.sizes.storm
    with b.server(system) as proc:
        b.start(proc, STORM, "bench:100:0:0")  # warm up: imports, connections, first-run paths
        runs = []
        for _ in range(b.sizes.storm_runs):
            cpu0, model0, client0, t0 = proc.cpu(), b.model.cpu(), time.process_time(), time.monotonic()
            tally = b.start(proc, STORM, f"bench:{n}:0:0")
            others = (b.model.cpu() - model0, time.process_time() - client0)
            runs.append((proc.cpu() - cpu0, time.monotonic() - t0, tally, others))
        cpu, seconds, tally, (model_cpu, client_cpu) = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
        frame = tally.bytes // max(tally.events, 1)
        if system == "runstream":
            b.frame_size = frame
        # the two cores are shared by server, model server and client: with all three busy,
        # events/s can be at most 2 cores / their CPU per event together
        per_event = [c / max(tally.events, 1) * 1e6 for c in (cpu, model_cpu, client_cpu)]
        return row("1 storm", system, tally.events, seconds, cpu, all(r[2].ok for r in runs), runs=len(runs),
                   cpu_us_per_event_all=[round(r[0] / max(r[2].events, 1) * 1e6, 1) for r in runs],
                   model_cpu_us_per_event=round(per_event[1], 1), client_cpu_us_per_event=round(per_event[2], 1),
                   two_core_bound_events_per_s=round(2e6 / sum(per_event)),
                   rss_mb=round(proc.rss() / 2**20, 1), frame_bytes=frame, errors=tally.errors[:2])


def latency(b: Bench, system: str) -> dict[str, Any]:
    """Tokens at 200/s: the time from the model server's write to the client's receipt."""
    n = b.sizes.latency_tokens
    with b.server(system) as proc:
        b.start(proc, STORM, "bench:100:0:0")
        cpu0, t0 = proc.cpu(), time.monotonic()
        tally = b.start(proc, STORM, f"bench:{n}:200:0")
        seconds, cpu = time.monotonic() - t0, proc.cpu() - cpu0
        lat = tally.latencies_ns
        return row("2 latency@200/s", system, tally.events, seconds, cpu, tally.ok and len(lat) >= n - 1,
                   p50_ms=round(percentile(lat, 0.5), 3), p99_ms=round(percentile(lat, 0.99), 3),
                   max_ms=round(percentile(lat, 1.0), 3), errors=tally.errors[:2])


def fanout(b: Bench, system: str) -> dict[str, Any]:
    """Many subscribers on one paced run; all gapless, and how long after the last token the last is done."""
    subs, n, procs = b.sizes.fanout_subscribers, b.sizes.fanout_events, b.sizes.client_processes
    delay_ms = 4000 + subs * 6
    with b.server(system) as proc, ProcessPoolExecutor(procs, mp_context=workers.spawn()) as pool:
        b.start(proc, STORM, "bench:100:0:0")
        session = str(uuid.uuid4())

        async def main() -> tuple[Tally, list[dict[str, Any]]]:  # the starter's tally, one part per client process
            seen = Tally()
            starter = asyncio.create_task(start_run(b.url(proc), STORM, f"bench:{n}:500:{delay_ms}", session, 600, seen))
            async with asyncio.timeout(30):
                while seen.run_id is None and not starter.done():
                    await asyncio.sleep(0.01)
            loop = asyncio.get_running_loop()
            share = [subs // procs + (i < subs % procs) for i in range(procs)]
            jobs = [
                loop.run_in_executor(pool, workers.followers, b.url(proc), seen.run_id, STORM, session, k, 600)
                for k in share
            ]
            return await starter, list(await asyncio.gather(*jobs))

        list(pool.map(int, range(procs)))  # processes up before the clock starts
        cpu0, t0 = proc.cpu(), time.monotonic()
        with MemorySampler(proc) as mem:
            tally, parts = asyncio.run(main())
        seconds, cpu = time.monotonic() - t0, proc.cpu() - cpu0
    results = [r for part in parts for r in part["tallies"]]
    followed = sum(r["events"] for r in results)
    client_cpu = sum(part["cpu_s"] for part in parts)
    delivered = tally.events + followed
    last_token = max([tally.last_token_ns] + [r["last_token_ns"] for r in results])
    done_after = (max(r["last_ns"] for r in results) - last_token) / 1e9 if results else float("nan")
    ok = tally.ok and len(results) == subs and all(r["ok"] and r["events"] == tally.events for r in results)
    bad = [r["errors"] for r in results if not r["ok"]][:2]
    return row("3 fan-out", system, delivered, seconds - delay_ms / 1000, cpu, ok, subscribers=subs,
               run_events=tally.events, last_done_after_last_token_s=round(done_after, 3),
               client_cpu_us_per_frame=round(client_cpu / followed * 1e6, 1) if followed else None,
               peak_rss_mb=round(max(mem.samples) / 2**20, 1), errors=bad)


def replay(b: Bench, system: str) -> dict[str, Any]:
    """Replay a finished run from index 0: one client, then several client processes at once, then after a restart."""
    n, procs = b.sizes.replay_events, b.sizes.client_processes
    db = b.db()
    session = str(uuid.uuid4())
    with b.server(system, db) as proc:
        run = asyncio.run(start_run(b.url(proc), STORM, f"bench:{n}:0:0", session, 600))
        one, many = _replays(b, proc, run, session, procs)
    after = None
    if system != "floor":  # the floor keeps nothing across a restart
        with b.server(system, db) as proc:
            after = _replays(b, proc, run, session, procs)
    ok = one["ok"] and many["ok"] and (after is None or after[0]["ok"] and after[1]["ok"])
    return row("4 replay", system, many["events"], many["seconds"], many["cpu"], ok,
               run_events=run.events, replayed_events=one["events"], first_index=one["first_index"],
               one_client_events_per_s=round(one["events"] / one["seconds"]), parallel_clients=procs * 2,
               server_capacity_events_per_s=round(many["events"] / many["cpu"]) if many["cpu"] else None,
               after_restart_events=after[0]["events"] if after else None,
               after_restart_reply=after[0]["reply"] if after and not after[0]["ok"] else None,
               after_restart_events_per_s=round(after[1]["events"] / after[1]["seconds"]) if after else None,
               errors=one["errors"][:2])


def _replays(b: Bench, proc: Proc, run: Tally, session: str, procs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One replay on its own, then ``2 * procs`` replays from ``procs`` client processes at once."""
    url, run_id = b.url(proc), run.run_id or ""
    cpu0, t0 = proc.cpu(), time.monotonic()
    tally = asyncio.run(follow_run(url, run_id, STORM, session, 600))
    one = {"events": tally.events, "seconds": time.monotonic() - t0, "cpu": proc.cpu() - cpu0, "errors": tally.errors,
           "ok": tally.ok and tally.events == run.events, "first_index": tally.expect - tally.events,
           "reply": (tally.controls + tally.errors)[:2]}
    with ProcessPoolExecutor(procs, mp_context=workers.spawn()) as pool:
        list(pool.map(int, range(procs)))  # processes up before the clock starts
        cpu0, t0 = proc.cpu(), time.monotonic()
        parts = list(pool.map(workers.followers, *zip(*[(url, run_id, STORM, session, 2, 600)] * procs)))
        seconds, cpu = time.monotonic() - t0, proc.cpu() - cpu0
    flat = [r for part in parts for r in part["tallies"]]
    many = {"events": sum(r["events"] for r in flat), "seconds": seconds, "cpu": cpu,
            "ok": all(r["ok"] and r["events"] == run.events for r in flat)}
    return one, many


def connections(b: Bench, system: str) -> dict[str, Any]:
    """Idle WebSocket connections: server memory per connection."""
    n, procs = b.sizes.connections, max(2, b.sizes.client_processes * 2)
    ctx = workers.spawn()
    with b.server(system) as proc:
        b.start(proc, STORM, "bench:100:0:0")
        opened, release = ctx.Queue(), ctx.Event()
        share = [n // procs + (i < n % procs) for i in range(procs)]
        before, t0 = proc.rss(), time.monotonic()
        clients = [ctx.Process(target=workers.idle, args=(b.url(proc), k, opened, release, 300)) for k in share]
        for c in clients:
            c.start()
        count = sum(opened.get(timeout=300) for _ in clients)
        time.sleep(1.0)
        seconds, after = time.monotonic() - t0, proc.rss()
        release.set()
        for c in clients:
            c.join(60)
    per = (after - before) / count if count else float("nan")
    return row("5 connections", system, count, seconds, 0.0, count == n, connections=count,
               kb_per_connection=round(per / 1024, 1), rss_mb=round(after / 2**20, 1))


def long_run(b: Bench, system: str) -> dict[str, Any]:
    """One very long run: memory over its life, then a complete replay."""
    n = b.sizes.agno_long_events if system == "agno" else b.sizes.long_events
    session = str(uuid.uuid4())
    with b.server(system) as proc:
        b.start(proc, STORM, "bench:100:0:0")
        cpu0, t0 = proc.cpu(), time.monotonic()
        with MemorySampler(proc) as mem:
            tally = asyncio.run(start_run(b.url(proc), STORM, f"bench:{n}:0:0", session, 3600))
        seconds, cpu = time.monotonic() - t0, proc.cpu() - cpu0
        again = asyncio.run(follow_run(b.url(proc), tally.run_id or "", STORM, session, 3600))
    def at(share: float) -> float:  # RSS in MB a share of the way through the run
        return round(mem.samples[max(1, int(len(mem.samples) * share))] / 2**20, 1)

    return row("6 long run", system, tally.events, seconds, cpu, tally.ok, rss_start_mb=round(mem.samples[0] / 2**20, 1),
               rss_10pct_mb=at(0.1), rss_50pct_mb=at(0.5), rss_90pct_mb=at(0.9), rss_peak_mb=round(max(mem.samples) / 2**20, 1),
               rss_end_mb=round(mem.samples[-1] / 2**20, 1), replay_events=again.events,
               replay_complete=again.ok and again.events == tally.events, errors=(tally.errors + again.errors)[:2])


def many_runs(b: Bench, system: str) -> dict[str, Any]:
    """Many concurrent content-creation runs, each read by its own socket."""
    runs, procs = b.sizes.many_runs, b.sizes.client_processes
    share = [runs // procs + (i < runs % procs) for i in range(procs)]
    with b.server(system) as proc, ProcessPoolExecutor(procs, mp_context=workers.spawn()) as pool:
        b.start(proc, CONTENT, "bench:100:0:0")
        list(pool.map(int, range(procs)))
        cpu0, t0 = proc.cpu(), time.monotonic()
        jobs = [pool.submit(workers.starters, b.url(proc), CONTENT, "bench:100:0:0", k, 600) for k in share]
        results = [r for job in jobs for r in job.result()]
        seconds, cpu = time.monotonic() - t0, proc.cpu() - cpu0
    events = sum(r["events"] for r in results)
    ok = len(results) == runs and all(r["ok"] for r in results)
    return row("7 many runs", system, events, seconds, cpu, ok, runs=runs, runs_per_s=round(runs / seconds, 1),
               errors=[r["errors"] for r in results if not r["ok"]][:2])


SCENARIOS = {
    "storm": (storm, ("runstream", "runstream-asgi", "agno", "floor")),
    "latency": (latency, ("runstream", "runstream-asgi", "agno", "floor")),
    "fanout": (fanout, ("runstream", "runstream-asgi", "agno", "floor")),
    "replay": (replay, ("runstream", "runstream-asgi", "agno", "floor")),
    "connections": (connections, ("runstream", "runstream-asgi", "agno", "floor")),
    "long": (long_run, ("runstream", "agno")),
    "many": (many_runs, ("runstream", "agno")),
}
