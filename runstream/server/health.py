"""``/health`` (the process answers) and ``/ready`` (it can serve runs) for load balancers.

``/ready`` answers 503 while the server drains (after SIGTERM), so that a balancer
sends new clients elsewhere before the replica goes, and while its database or Redis
does not answer within ``READY_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from runstream.runs.manager import RunManager
from runstream.server.schemas import Health

__all__ = ["READY_TIMEOUT", "health_router"]

READY_TIMEOUT = 2.0
"""Seconds the database and the hub each have to answer ``/ready``."""

health_router = APIRouter(tags=["health"])


@health_router.get("/health", response_model=Health)
async def health() -> dict[str, str]:
    """Alive: the process serves HTTP (it may still be draining or without its database)."""
    return {"status": "ok"}


@health_router.get("/ready", responses={503: {"description": "Draining, or the database or Redis does not answer"}})
async def ready(request: Request) -> JSONResponse:
    """Ready for new runs: not draining, and the database and the hub's broker answer."""
    manager: RunManager = request.app.state.server.manager
    database, hub = await asyncio.gather(_check(manager.log.ping), _check(manager.hub.ping))
    draining = not manager.accepting
    ok = database == "ok" and hub == "ok" and not draining
    body = {"status": "ready" if ok else "draining" if draining else "unavailable", "database": database, "hub": hub}
    return JSONResponse(body, status_code=200 if ok else 503)


async def _check(ping: Callable[[], Awaitable[None]]) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await ping()
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT:g} s"
    except Exception as exc:  # any failure to reach it makes the replica unready, with its reason
        return f"{type(exc).__name__}: {exc}"[:200]
    return "ok"
