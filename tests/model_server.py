"""A real OpenAI-compatible HTTP server for tests, on 127.0.0.1:<ephemeral>.

Plain asyncio in a thread of its own, so sync and async tests (and a runstream
server in another thread) can all talk to it. It answers each
``POST /v1/chat/completions`` with the next scripted ``Reply`` and records
every request body, so a test can check what the model was sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.tcpserver import tcp_server_in_thread

__all__ = [
    "ModelServer",
    "Reply",
    "anthropic_reply",
    "cut_reply",
    "error_reply",
    "raw_reply",
    "serve_model",
    "text_reply",
    "tool_reply",
]


@dataclass
class Reply:
    """One HTTP answer: a status, headers, body pieces sent in turn, and whether
    to drop the connection before the body is complete."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    pieces: list[bytes] = field(default_factory=list)
    cut: bool = False


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if delta is None and finish is None else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    body: dict[str, Any] = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": "test", "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(pieces: list[bytes]) -> Reply:
    return Reply(headers={"content-type": "text/event-stream"}, pieces=pieces)


def text_reply(tokens: list[str], usage: tuple[int, int] = (10, 5)) -> Reply:
    """An answer streamed token by token, then usage and ``[DONE]``."""
    pieces = [_chunk({"role": "assistant", "content": ""})]
    pieces += [_chunk({"content": t}) for t in tokens]
    pieces += [_chunk(finish="stop"), _chunk(usage=_usage(*usage)), b"data: [DONE]\n\n"]
    return _sse(pieces)


def tool_reply(calls: list[tuple[str, str, str]], usage: tuple[int, int] = (10, 5)) -> Reply:
    """Tool calls ``(id, name, arguments_json)``, each one's arguments split over two chunks
    the way real servers send them."""
    pieces = [_chunk({"role": "assistant", "content": None})]
    for index, (call_id, name, arguments) in enumerate(calls):
        head, tail = arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]
        first = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": head}}
        pieces.append(_chunk({"tool_calls": [first]}))
        pieces.append(_chunk({"tool_calls": [{"index": index, "function": {"arguments": tail}}]}))
    pieces += [_chunk(finish="tool_calls"), _chunk(usage=_usage(*usage)), b"data: [DONE]\n\n"]
    return _sse(pieces)


def raw_reply(lines: list[str]) -> Reply:
    """SSE lines exactly as given (each followed by a blank line)."""
    return _sse([line.encode() + b"\n\n" for line in lines])


def cut_reply(tokens: list[str]) -> Reply:
    """A few tokens, then the connection drops mid-answer."""
    return Reply(headers={"content-type": "text/event-stream"}, pieces=[_chunk({"content": t}) for t in tokens], cut=True)


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"error": {"message": message, "type": "test_error", "code": str(status)}}).encode()
    return Reply(status=status, headers={"content-type": "application/json", **(headers or {})}, pieces=[body])


def anthropic_reply(
    text: Sequence[str] = (),
    tools: Sequence[tuple[str, str, str]] = (),
    usage: tuple[int, int] = (10, 5),
    stop: bool = True,
) -> Reply:
    """An Anthropic Messages stream: text deltas in one block, then one ``tool_use`` block
    per ``(id, name, input_json)`` with its JSON split in two; ``stop=False`` leaves out
    ``message_stop``."""
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_test", "usage": {"input_tokens": usage[0], "output_tokens": 1}}},
        {"type": "ping"},
    ]
    if text:
        events.append({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        events += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}} for t in text]
        events.append({"type": "content_block_stop", "index": 0})
    for index, (call_id, name, arguments) in enumerate(tools, start=1 if text else 0):
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            delta = {"type": "input_json_delta", "partial_json": part}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
    reason = "tool_use" if tools else "end_turn"
    events.append({"type": "message_delta", "delta": {"stop_reason": reason}, "usage": {"output_tokens": usage[1]}})
    if stop:
        events.append({"type": "message_stop"})
    pieces = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
    return _sse(pieces)


class ModelServer:
    """Serves scripted replies in order; ``requests`` holds each request's JSON body."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.port = 0
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """For ``OpenAIChat``; the ``anthropic`` SDK wants ``root_url``."""
        return f"{self.root_url}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def _next(self, path: str, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.paths.append(path)
            self.requests.append(body)
            if not self.replies:
                return error_reply(500, "the test script has no reply left")
            return self.replies.pop(0)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            request_line, *lines = head.decode("latin-1").split("\r\n")
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = json.loads(await reader.readexactly(length)) if length else {}
            await self._send(writer, self._next(request_line.split(" ")[1], body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        headers = {**reply.headers, "transfer-encoding": "chunked", "connection": "close"}
        head = f"HTTP/1.1 {reply.status} Test\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(head.encode() + b"\r\n")
        for piece in reply.pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        if not reply.cut:
            writer.write(b"0\r\n\r\n")
        await writer.drain()


@contextmanager
def serve_model(replies: list[Reply] | None = None) -> Iterator[ModelServer]:
    """Run a ``ModelServer`` on an ephemeral port in a thread until the block ends."""
    model_server = ModelServer(replies or [])
    with tcp_server_in_thread(model_server.handle, "model server") as port:
        model_server.port = port
        yield model_server
