"""A cap on HTTP request bodies, before any route reads them (413 ``message_too_large``).

A declared ``Content-Length`` over the cap is refused at once; a chunked body is
counted as it arrives and refused when it passes the cap, so no route ever
holds more than the cap of one request in memory.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runstream.errors import MessageTooLarge

__all__ = ["limit_body"]


def _too_large(limit: int) -> str:
    return f"Request body too large (limit {limit} bytes)"


async def limit_body(app: ASGIApp, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve the HTTP request ``scope`` with ``app``, its body held to ``limit`` bytes."""
    declared = dict(scope.get("headers") or ()).get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        body = orjson.dumps({"detail": _too_large(limit), "code": MessageTooLarge.code})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
        return
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise MessageTooLarge(_too_large(limit))
        return message

    await app(scope, counted, send)
