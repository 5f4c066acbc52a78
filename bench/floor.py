"""The floor: a minimal ``websockets`` server that pushes frames shaped like run events, no work behind them.

It answers ``start-workflow`` (message ``bench:TOKENS:RATE:DELAY_MS`` as for the
model server) and ``reconnect`` (replay of a finished run, or catch-up then
live), with frames padded to ``--frame-size`` bytes. At RATE 0 the frames are
built before the first is sent; at a pace each is stamped as it is sent, so
the latency figure is the transport's and the client's alone.

    python bench/floor.py --port 8004 --frame-size 600
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve

__all__ = ["Floor"]


class _Run:
    __slots__ = ("frames", "subscribers", "done")

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.subscribers: set[ServerConnection] = set()
        self.done = False


class Floor:
    """Runs of padded frames, pushed to their subscribers."""

    def __init__(self, frame_size: int) -> None:
        self.frame_size = frame_size
        self.runs: dict[str, _Run] = {}

    def frame(self, run_id: str, index: int, content: str, last: bool) -> str:
        name = "WorkflowCompleted" if last else "RunContent"
        data = orjson.dumps({"event": name, "run_id": run_id, "event_index": index, "content": content, "pad": ""})
        pad = "x" * max(0, self.frame_size - len(data) - len(name) - 16)
        return f"event: {name}\ndata: {data[:-2].decode()}{pad}\"}}\n\n"

    async def handler(self, ws: ServerConnection) -> None:
        await ws.send(orjson.dumps({"event": "connected", "message": "floor", "requires_auth": False}).decode())
        async for text in ws:
            ask = orjson.loads(text)
            if ask.get("action") == "start-workflow":
                run_id = str(uuid.uuid4())
                run = self.runs[run_id] = _Run()
                run.subscribers.add(ws)
                spec = [int(x) for x in str(ask.get("message", "")).split("bench:", 1)[-1].split(":")[:3]]
                await self.produce(run_id, run, *spec)
            elif ask.get("action") == "reconnect":
                self.subscribe(ws, ask["run_id"])

    def subscribe(self, ws: ServerConnection, run_id: str) -> None:
        """Catch up and join the live subscribers with no await in between, so no frame falls between."""
        run = self.runs[run_id]
        notice = {"event": "replay" if run.done else "catch_up", "run_id": run_id, "total_events": len(run.frames)}
        broadcast([ws], orjson.dumps(notice).decode())
        for frame in run.frames:
            broadcast([ws], frame)
        if not run.done:
            run.subscribers.add(ws)

    async def produce(self, run_id: str, run: _Run, tokens: int, rate: int, delay_ms: int) -> None:
        await asyncio.sleep(delay_ms / 1000)
        if rate == 0:
            frames = [self.frame(run_id, i, f"{time.monotonic_ns()} ", i == tokens - 1) for i in range(tokens)]
            for i, frame in enumerate(frames):
                run.frames.append(frame)
                broadcast(run.subscribers, frame)
                if i % 64 == 63:
                    await asyncio.sleep(0)
        else:
            start = time.monotonic()
            for i in range(tokens):
                wait = start + i / rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                frame = self.frame(run_id, i, f"{time.monotonic_ns()} ", i == tokens - 1)
                run.frames.append(frame)
                broadcast(run.subscribers, frame)
        run.done = True
        run.subscribers.clear()


async def _main(port: int, frame_size: int) -> None:
    floor = Floor(frame_size)
    async with serve(floor.handler, "127.0.0.1", port, compression=None, max_size=None, ping_interval=None, backlog=16384):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--frame-size", type=int, default=600)
    args = parser.parse_args()
    asyncio.run(_main(args.port, args.frame_size))
