"""The client's plain HTTP calls: an ``httpx.AsyncClient`` and the server's error shape."""

from __future__ import annotations

import httpx

from runstream.client.errors import server_error

__all__ = ["http_client", "raise_for_error"]


def http_client(url: str, token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=httpx.Timeout(30, connect=5))  # an unreachable server fails in seconds


async def raise_for_error(response: httpx.Response) -> None:
    """Turn an error response (``{"detail", "code"}``) into the ``ServerError`` of its code."""
    if response.status_code < 400:
        return
    await response.aread()
    try:
        body = response.json()
        detail, code = str(body.get("detail")), str(body.get("code", "http_error"))
    except ValueError:
        detail, code = response.text or response.reason_phrase, "http_error"
    raise server_error(detail, code, response.status_code)
