"""A local OpenAI-compatible chat server that streams stamped tokens, fast enough never to be the bottleneck.

Each token's text is the ``time.monotonic_ns()`` at which it was written
(CLOCK_MONOTONIC is one clock for every process on the machine), so a client
can measure latency from the model to itself. The pace comes from the
request: ``bench:TOKENS:RATE:DELAY_MS`` anywhere in the body (RATE 0 = as fast
as possible), else the command-line defaults. Raw asyncio, one chunk template.

    python bench/model_server.py --port 8001 --tokens 100
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time

__all__ = ["Pace", "pace_of", "serve"]

_PACE = re.compile(rb"bench:(\d+):(\d+):(\d+)")
_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
    b"cache-control: no-cache\r\n\r\n"
)
_PREFIX = b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"bench","choices":[{"index":0,"delta":{"content":"'
_SUFFIX = b' "},"finish_reason":null}]}\n\n'
_ROLE = b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"bench","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
_STOP = b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
_USAGE = b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"bench","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":%d,"total_tokens":%d}}\n\ndata: [DONE]\n\n'
_BATCH = 256
_MAX_REQUEST = 1 << 22


class Pace:
    """How one response streams: ``tokens`` tokens at ``rate`` per second (0: at once), after ``delay`` s."""

    __slots__ = ("tokens", "rate", "delay")

    def __init__(self, tokens: int, rate: int, delay: float) -> None:
        self.tokens, self.rate, self.delay = tokens, rate, delay


def pace_of(body: bytes, default: Pace) -> Pace:
    match = _PACE.search(body)
    if match is None:
        return default
    return Pace(int(match[1]), int(match[2]), int(match[3]) / 1000)


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _token(now_ns: int) -> bytes:
    return _chunk(_PREFIX + str(now_ns).encode() + _SUFFIX)


async def _stream(writer: asyncio.StreamWriter, pace: Pace) -> None:
    writer.write(_HEAD + _chunk(_ROLE))
    if pace.delay:
        await asyncio.sleep(pace.delay)
    if pace.rate:
        start = time.monotonic()
        for i in range(pace.tokens):
            wait = start + i / pace.rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(_token(time.monotonic_ns()))
            await writer.drain()
    else:
        for first in range(0, pace.tokens, _BATCH):
            now = time.monotonic_ns()
            writer.write(b"".join(_token(now) for _ in range(min(_BATCH, pace.tokens - first))))
            await writer.drain()
    writer.write(_chunk(_STOP) + _chunk(_USAGE % (pace.tokens, pace.tokens + 1)) + b"0\r\n\r\n")
    await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """The body of the next request on a kept-alive connection, or None at its end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = re.search(rb"(?i)content-length:\s*(\d+)", head)
    size = min(int(length[1]), _MAX_REQUEST) if length else 0
    return await reader.readexactly(size) if size else b""


def serve(port: int, default: Pace) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (body := await _read_request(reader)) is not None:
                await _stream(writer, pace_of(body, default))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--rate", type=int, default=0)
    args = parser.parse_args()
    serve(args.port, Pace(args.tokens, args.rate, 0.0))
