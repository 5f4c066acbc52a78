"""A TCP proxy for tests that forwards to a real server and cuts connections mid-stream.

Each connection is cut (both sides aborted) after ``cut_after`` bytes from the
server, until ``max_cuts`` connections have been cut; later ones pass untouched,
so a client that resumes correctly always finishes. It runs on its own thread and
loop, so subprocesses (the CLI) can use it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from tests.tcpserver import tcp_server_in_thread

__all__ = ["CuttingProxy", "cutting_proxy"]


class CuttingProxy:
    def __init__(self, upstream_port: int, cut_after: int, max_cuts: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.max_cuts = max_cuts
        self.cuts = 0
        self.port = 0
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        budget = self.cut_after if self.cuts < self.max_cuts else None
        upstream = asyncio.create_task(self._pipe(reader, up_writer, None))
        try:
            self.cuts += await self._pipe(up_reader, writer, budget)
        except asyncio.CancelledError:
            pass  # the proxy is closing: end this connection quietly
        finally:
            upstream.cancel()
            await asyncio.gather(upstream, return_exceptions=True)
            for w in (writer, up_writer):
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, budget: int | None) -> bool:
        """Forward until EOF, or until ``budget`` bytes have passed: then True (cut)."""
        try:
            while data := await reader.read(65536):
                if budget is not None:
                    data = data[:budget]
                    budget -= len(data)
                writer.write(data)
                await writer.drain()
                if budget == 0:
                    return True
        except OSError:
            pass
        return False


@contextmanager
def cutting_proxy(upstream_port: int, cut_after: int = 1500, max_cuts: int = 8) -> Iterator[CuttingProxy]:
    """A ``CuttingProxy`` listening on 127.0.0.1:<ephemeral> until the block ends."""
    proxy = CuttingProxy(upstream_port, cut_after, max_cuts)

    async def end_connections() -> None:
        for task in list(proxy.tasks):
            task.cancel()
        await asyncio.gather(*proxy.tasks, return_exceptions=True)

    with tcp_server_in_thread(proxy.handle, "proxy", end_connections) as port:
        proxy.port = port
        yield proxy
