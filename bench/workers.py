"""Client work spread over several processes, for loads one Python client process cannot carry.

Each entry point runs in a spawned process, opens its share of sockets with
the one client (``bench.client``), and returns plain summaries.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
import time
import uuid
from typing import Any

from bench.client import Tally, follow_run, open_socket, start_run

__all__ = ["summary", "followers", "starters", "idle", "raise_fd_limit", "spawn"]

_CONNECTS = 256


def raise_fd_limit() -> None:
    """Let this process (and the servers it starts) hold tens of thousands of sockets."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def summary(tally: Tally) -> dict[str, Any]:
    return {
        "ok": tally.ok,
        "events": tally.events,
        "errors": tally.errors[:2],
        "controls": tally.controls[:3],
        "run_id": tally.run_id,
        "first_ns": tally.first_ns,
        "last_ns": tally.last_ns,
        "last_token_ns": tally.last_token_ns,
        "latencies_ns": tally.latencies_ns,
    }


def followers(url: str, run_id: str, workflow_id: str, session_id: str, count: int, timeout: float) -> dict[str, Any]:
    """``count`` sockets that each reconnect to ``run_id`` from its start and read it to the end:
    their summaries, and this process's CPU seconds for all of it."""
    raise_fd_limit()

    async def main() -> list[dict[str, Any]]:
        tallies = await asyncio.gather(*(follow_run(url, run_id, workflow_id, session_id, timeout) for _ in range(count)))
        return [dict(summary(t), latencies_ns=[]) for t in tallies]

    cpu0 = time.process_time()
    tallies = asyncio.run(main())
    return {"tallies": tallies, "cpu_s": time.process_time() - cpu0}


def starters(url: str, workflow_id: str, message: str, count: int, timeout: float) -> list[dict[str, Any]]:
    """``count`` concurrent runs, each started and read to its end on its own socket."""
    raise_fd_limit()

    async def main() -> list[dict[str, Any]]:
        runs = [start_run(url, workflow_id, message, str(uuid.uuid4()), timeout) for _ in range(count)]
        return [dict(summary(t), latencies_ns=[]) for t in await asyncio.gather(*runs)]

    return asyncio.run(main())


def idle(url: str, count: int, opened: Any, release: Any, timeout: float) -> None:
    """Hold ``count`` open sockets (greeting read) until ``release`` is set; report how many opened."""
    raise_fd_limit()

    async def main() -> None:
        gate = asyncio.Semaphore(_CONNECTS)

        async def one() -> Any:
            async with gate:
                try:
                    return await open_socket(url)
                except OSError:
                    return None

        sockets = [s for s in await asyncio.gather(*(one() for _ in range(count))) if s is not None]
        opened.put(len(sockets))
        await asyncio.get_running_loop().run_in_executor(None, release.wait, timeout)
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)

    asyncio.run(main())


def spawn() -> Any:
    """The multiprocessing context the workers run in (spawn: no inherited event loop)."""
    return mp.get_context("spawn")
