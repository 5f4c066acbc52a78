"""A raw asyncio TCP server on 127.0.0.1:<ephemeral>, in a thread of its own: for test peers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

__all__ = ["tcp_server_in_thread"]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextmanager
def tcp_server_in_thread(
    handle: Handler, name: str, before_stop: Callable[[], Awaitable[None]] | None = None
) -> Iterator[int]:
    """Serve ``handle`` until the block ends; yields the port. ``before_stop`` runs in the
    server's loop when the block ends (to end connections still open)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    port = 0

    async def main() -> None:
        nonlocal port
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await stop.wait()
            if before_stop is not None:
                await before_stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(timeout=10):
        raise RuntimeError(f"{name} did not start")
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
