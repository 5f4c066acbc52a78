"""A TCP proxy for tests that a test can take down and bring back: a database outage.

While down, it aborts every open connection and each new one at once (as a
restarted database would); once up, it forwards again. It runs on its own
thread and loop, like ``tests/cutproxy.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.tcpserver import tcp_server_in_thread

__all__ = ["OutageProxy", "outage_proxy"]


class OutageProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._up = threading.Event()
        self._up.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.refused = 0
        """Connections aborted because the proxy was down: how the test knows the outage bit."""

    def down(self) -> None:
        """From now on no byte passes: open connections are aborted, new ones too."""
        self._up.clear()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._abort_all)

    def up(self) -> None:
        self._up.set()

    def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._up.is_set():
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pipes = [asyncio.create_task(self._pipe(reader, up_writer)), asyncio.create_task(self._pipe(up_reader, writer))]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not self._up.is_set():
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            pass


@contextmanager
def outage_proxy(upstream_port: int) -> Iterator[OutageProxy]:
    """An ``OutageProxy`` to 127.0.0.1:``upstream_port``, listening until the block ends."""
    proxy = OutageProxy(upstream_port)

    async def end_connections() -> None:
        proxy._abort_all()

    with tcp_server_in_thread(proxy.handle, "outage proxy", end_connections) as port:
        proxy.port = port
        yield proxy
