"""The runstream server: workflows, a log and a hub behind WebSocket and HTTP."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.routing import NoMatchFound
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.message_logger import MessageLoggerMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from runstream.engine.workflow import Workflow
from runstream.errors import DatabaseInUse, TooManyConnections
from runstream.fanout import open_hub
from runstream.fanout.base import Hub
from runstream.log import open_log
from runstream.log.base import EventLog
from runstream.log.lock import DatabaseLock
from runstream.log.sqlite import SQLiteLog
from runstream.log.retention import RetentionPolicy, keep_applying
from runstream.logjson import json_log_config, wants_json_logs
from runstream.runs.recovery import DEFAULT_LEASE_TTL
from runstream.runs.manager import RunManager
from runstream.server.access import Access
from runstream.server.auth import AuthConfig, Authenticator
from runstream.server.bodysize import limit_body
from runstream.server.channel import AsgiChannel, Channel
from runstream.server.console import install_console
from runstream.server.gate import Gate
from runstream.server.health import health_router
from runstream.server.http_errors import install_error_handlers
from runstream.server import config, sessions
from runstream.server.metrics import metrics_router
from runstream.server.cors import cors_origins_from_env, install_cors
from runstream.server.docs import install_docs
from runstream.server.listen import bind, listen_address
from runstream.server.logs import attach_runstream_handler, banner, log_config, log_level_of
from runstream.server.routes import router
from runstream.server.transport import DirectWebSocketProtocol
from runstream.server.limits import DEFAULT_MAX_MESSAGE_SIZE, Counter, Limits
from runstream.server.websocket import SocketServices, WorkflowSocket
from runstream.tracing import traced_request

__all__ = ["Server", "DEFAULT_DATABASE_URL", "DEFAULT_HANDOVER_GRACE", "DEFAULT_MAX_MESSAGE_SIZE", "DEFAULT_SSE_HEARTBEAT", "SHUTDOWN_GRACE"]

DEFAULT_DATABASE_URL = "sqlite:///data/runstream.db"
DEFAULT_SSE_HEARTBEAT = 15.0
SHUTDOWN_GRACE = 5.0
"""Seconds ``serve`` lets open HTTP streams end after SIGTERM before it cancels them."""
DEFAULT_HANDOVER_GRACE = 10.0
"""Seconds ``serve`` lets each run reach its next step boundary after SIGTERM before it stops
the run mid-step (docs/deploy.md); below the lease TTL, so the lease outlasts it."""


WS_PATH = "/workflows/ws"

logger = logging.getLogger("runstream.server")


_UVICORN_WRAPPERS = (ProxyHeadersMiddleware, MessageLoggerMiddleware)
"""What uvicorn itself may wrap an app in; they do nothing a ``/workflows/ws`` handler needs."""


class _App(FastAPI):
    """The FastAPI app, but ``/workflows/ws`` goes straight to its handler while no middleware
    would see it: the middleware stack's coroutines would otherwise sit in memory for every
    idle connection. Once middleware is added, ``/workflows/ws`` goes through it like any
    other path (docs/http.md, "The WebSocket endpoint and middleware")."""

    workflows_ws: Callable[[WebSocket], Awaitable[None]] | None = None
    max_body: int | None = None

    @property
    def ws_skips_nothing(self) -> bool:
        """True when skipping the middleware stack skips nothing a WebSocket would pass through:
        no middleware was added, or only HTTP-only ones (``@app.middleware("http")``)."""
        return all(
            isinstance(m.cls, type) and issubclass(m.cls, BaseHTTPMiddleware) for m in self.user_middleware
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with traced_request(scope.get("headers", [])):  # runs started here are children of its trace
            if (
                scope["type"] == "websocket"
                and scope["path"] == WS_PATH
                and self.workflows_ws is not None
                and self.ws_skips_nothing
            ):
                await self.workflows_ws(WebSocket(scope, receive, send))
            elif scope["type"] == "http" and self.max_body is not None:
                await limit_body(super().__call__, self.max_body, scope, receive, send)
            else:
                await super().__call__(scope, receive, send)


class Server:
    """``Server(workflows=[...])``, then ``.serve(port=7777)`` or mount ``.app`` in any ASGI server.

    ``database_url``: ``sqlite:///PATH`` (default ``RUNSTREAM_DATABASE_URL`` or
    ``data/runstream.db``) or ``postgresql://...``. ``redis_url``: ``redis://...``
    (default ``RUNSTREAM_REDIS_URL``) when several replicas share one PostgreSQL
    log; without it, live events stay in this process. ``security_key``: clients must
    ``authenticate`` with it (default ``RUNSTREAM_SECURITY_KEY`` or ``OS_SECURITY_KEY``).
    ``auth``: JWT verification and per-user isolation (default ``AuthConfig.from_env()``;
    docs/security.md). ``limits``: sizes, rates and counts per client (default
    ``Limits.from_env()``); ``max_message_size`` overrides its frame and body size.
    ``max_concurrent_runs`` (default ``RUNSTREAM_MAX_CONCURRENT_RUNS`` or 1000) and ``max_queued_runs``
    (``RUNSTREAM_MAX_QUEUED_RUNS`` or 10000) override the limits' run queue: runs past the first
    wait in the log, queued, for a slot on any replica (docs/deploy.md#the-run-queue).
    ``retention``: how long finished runs are kept (default ``RetentionPolicy.from_env()``:
    for ever). ``lease_ttl``: seconds after which a silent replica's runs are taken over
    (docs/recovery.md). ``handover_grace``: after SIGTERM, ``serve()`` lets each run finish
    the step it is in for at most this many seconds (default ``RUNSTREAM_HANDOVER_GRACE`` or
    10), then hands it over (docs/deploy.md). ``compression``: permessage-deflate for
    WebSocket clients that ask for it (browsers and ``websockets`` do); off by default, since each connection then
    holds ~40 KB of zlib state and every frame pays for deflate: worth it on slow links only.
    ``cors_origins``: browser origins (``["https://app.example"]``, or ``["*"]``) that may call the
    HTTP API from pages of their own (default ``RUNSTREAM_CORS_ORIGINS``, comma-separated; none).
    """

    def __init__(
        self,
        workflows: Sequence[Workflow],
        database_url: str | None = None,
        redis_url: str | None = None,
        log: EventLog | None = None,
        hub: Hub | None = None,
        security_key: str | None = None,
        max_message_size: int | None = None,
        title: str = "runstream",
        sse_heartbeat: float = DEFAULT_SSE_HEARTBEAT,
        retention: RetentionPolicy | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        compression: bool = False,
        auth: AuthConfig | None = None,
        limits: Limits | None = None,
        handover_grace: float | None = None,
        cors_origins: Sequence[str] | None = None,
        max_concurrent_runs: int | None = None,
        max_queued_runs: int | None = None,
    ) -> None:
        self.cors_origins = list(cors_origins) if cors_origins is not None else cors_origins_from_env()
        """Browser origins allowed to call the HTTP API from another origin; none by default."""
        self.database_url = database_url or os.environ.get("RUNSTREAM_DATABASE_URL") or DEFAULT_DATABASE_URL
        self.redis_url = redis_url or os.environ.get("RUNSTREAM_REDIS_URL") or None
        if auth is None:
            auth = AuthConfig.from_env(security_key=security_key)
        elif security_key is not None:
            auth.security_key = security_key
        self.auth = auth
        self.authenticator = Authenticator(auth)
        self.limits = limits or Limits.from_env()
        if max_message_size is not None:
            self.limits.max_message_size = max_message_size
        if max_concurrent_runs is not None:
            self.limits.max_concurrent_runs = max_concurrent_runs
        if max_queued_runs is not None:
            self.limits.max_queued_runs = max_queued_runs
        self.max_message_size = self.limits.max_message_size
        self.compression = compression
        self.sse_heartbeat = sse_heartbeat  # seconds of silence before an SSE stream sends `: ping`
        self.retention = retention or RetentionPolicy.from_env()
        self.manager = RunManager(
            log or open_log(self.database_url), hub or open_hub(self.redis_url), workflows, lease_ttl=lease_ttl,
            max_concurrent_runs=self.limits.max_concurrent_runs, max_queued_runs=self.limits.max_queued_runs,
        )
        self.access = Access(auth.user_isolation)
        self.gate = Gate(self.manager, self.access, self.limits)
        self.client_connections = Counter(self.limits.max_connections_per_client, "connections", TooManyConnections)
        self._socket_services = SocketServices(self.authenticator, self.gate, self.limits, self.client_connections)
        if handover_grace is None:
            handover_grace = float(os.environ.get("RUNSTREAM_HANDOVER_GRACE") or DEFAULT_HANDOVER_GRACE)
        self.handover_grace = handover_grace
        self._closing_grace = 0.0  # ``serve`` sets it: its SIGTERM is a deploy, runs get their grace
        self._sockets: set[WorkflowSocket] = set()
        self._log_level: str | None = None
        log_path = self.manager.log.path if isinstance(self.manager.log, SQLiteLog) else ":memory:"
        self._database_lock = DatabaseLock(log_path) if log_path != ":memory:" else None
        """One server per SQLite file: held from start-up to shutdown (``runstream.log.lock``)."""
        self.app = self._build_app(title)

    @property
    def connections(self) -> frozenset[WorkflowSocket]:
        """The ``/workflows/ws`` connections open now (each with its ``channel``)."""
        return frozenset(self._sockets)

    def hold_database(self) -> None:
        """Take this server's SQLite file for itself; ``DatabaseInUse`` if another process has it."""
        if self._database_lock is not None:
            self._database_lock.acquire()

    def release_database(self) -> None:
        if self._database_lock is not None:
            self._database_lock.release()

    async def drain(self) -> None:
        """Begin a graceful shutdown: take no new runs, and send every WebSocket client
        ``server_shutdown`` so it reconnects (after the restart, or to another replica)."""
        self.manager.stop_accepting()
        await asyncio.gather(*(s.shutdown() for s in list(self._sockets)), return_exceptions=True)

    def _serves_directly(self, outer: Any) -> bool:
        """Whether runstream's own transport may serve ``/workflows/ws`` for uvicorn running
        ``outer``: only when nothing would run between uvicorn and the handler, i.e. ``outer``
        is this server's app (in uvicorn's own wrappers at most) and that app has no middleware
        a WebSocket passes through."""
        while isinstance(outer, _UVICORN_WRAPPERS):
            outer = outer.app
        return outer is self.app and self.app.ws_skips_nothing

    def _build_app(self, title: str) -> _App:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            if self._log_level is not None and not wants_json_logs():  # served with uvicorn_options()
                attach_runstream_handler(self._log_level)
            self.hold_database()
            try:
                await self.manager.start()
            except BaseException:
                self.release_database()
                raise
            pruning = None
            if self.retention.keep_days is not None:
                pruning = asyncio.create_task(keep_applying(self.manager.log, self.retention))
            try:
                yield
            finally:
                if pruning is not None:
                    pruning.cancel()
                    await asyncio.gather(pruning, return_exceptions=True)
                await self.drain()
                await self.manager.close(self._closing_grace)
                await self.authenticator.close()
                self.release_database()

        app = _App(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
        app.state.server = self
        app.max_body = self.limits.max_message_size
        install_error_handlers(app)
        install_cors(app, self.cors_origins)
        install_docs(app)
        app.include_router(router)
        app.include_router(health_router)
        app.include_router(metrics_router)
        install_console(app)
        app.include_router(config.router)
        app.include_router(sessions.router)

        async def workflows_ws(websocket: WebSocket) -> None:
            await self._serve_socket(AsgiChannel(websocket))

        app.router.add_websocket_route(WS_PATH, workflows_ws)
        app.workflows_ws = workflows_ws
        return app

    async def _serve_socket(self, channel: Channel) -> None:
        connection = WorkflowSocket(channel, self._socket_services, channel.peer())
        self._sockets.add(connection)
        try:
            await connection.serve()
        finally:
            self._sockets.discard(connection)

    def uvicorn_options(self, log_level: str | None = None, **overrides: Any) -> dict[str, Any]:
        """uvicorn settings this server needs (its WebSocket transport, frame size limit,
        compression, loggers that print runstream's lines at ``log_level``: see
        ``runstream.server.logs``), then ``overrides``."""
        level = log_level_of(log_level)
        self._log_level = level  # the lifespan then prints runstream's own lines at it
        options: dict[str, Any] = {
            "ws": functools.partial(
                DirectWebSocketProtocol, path=WS_PATH, handler=self._serve_socket, direct=self._serves_directly
            ),
            "ws_max_size": self.max_message_size,
            "ws_per_message_deflate": self.compression,
            "log_level": level,
            "log_config": log_config(level),
            "timeout_graceful_shutdown": SHUTDOWN_GRACE,
        }
        if wants_json_logs():
            options["log_config"] = json_log_config(str(overrides.get("log_level", options["log_level"])))
        return {**options, **overrides}

    def serve(
        self, host: str | None = None, port: int | None = None, log_level: str | None = None, **uvicorn_options: Any
    ) -> None:
        """Run the server in this process until Ctrl-C or SIGTERM, then shut down gracefully:
        ``drain``, let HTTP streams end (``SHUTDOWN_GRACE`` s at most), let runs reach their
        next step boundary (``handover_grace`` s at most), hand them over to other replicas.

        ``host``/``port``: else ``RUNSTREAM_HOST``/``RUNSTREAM_PORT``, else ``HOST``/``PORT``, else
        ``127.0.0.1:7777`` (``runstream.server.listen``). The port is bound and the SQLite file
        locked before the database is opened: a busy port or a database another server holds
        ends the process at once with a message and exit status 1."""
        self._closing_grace = self.handover_grace
        host, port = listen_address(host, port)
        sock = bind(host, port)
        try:
            self.hold_database()
        except DatabaseInUse as exc:
            sock.close()
            raise SystemExit(f"error: {exc}") from None
        options = self.uvicorn_options(log_level, **uvicorn_options)
        config = uvicorn.Config(self.app, host=host, port=port, **options)
        server = _DrainingUvicorn(config, self.drain, lambda: logger.info("%s", self._banner(host, port)))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down gracefully and re-raised it
            pass
        finally:
            sock.close()
            self.release_database()
        if not server.started:
            raise SystemExit(3)  # as uvicorn.run: the app failed to start

    def _banner(self, host: str, port: int) -> str:
        try:  # by name: routes of included routers are not listed flat in ``app.routes``
            has_console = self.app.url_path_for("console") == "/"
        except NoMatchFound:
            has_console = False
        log = self.manager.log
        database = f"SQLite {Path(log.path).resolve()}" if isinstance(log, SQLiteLog) else self.database_url
        return banner(self.manager.workflows, database, host, port, has_console)


class _DrainingUvicorn(uvicorn.Server):
    """uvicorn closes WebSockets (1012) before the app's shutdown runs; this lets the app
    say goodbye first."""

    def __init__(
        self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]], on_started: Callable[[], None]
    ) -> None:
        super().__init__(config)
        self._drain = drain
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._drain()
        await super().shutdown(sockets)
