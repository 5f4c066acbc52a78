"""The runstream server: workflows, a log and a hub behind WebSocket and HTTP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket

from runstream.engine.workflow import Workflow
from runstream.fanout.base import Hub
from runstream.fanout.local import LocalHub
from runstream.log import open_log
from runstream.log.base import EventLog
from runstream.runs.manager import RunManager
from runstream.server.routes import router
from runstream.server.websocket import WorkflowSocket

__all__ = ["Server", "DEFAULT_DATABASE_URL", "DEFAULT_MAX_MESSAGE_SIZE"]

DEFAULT_DATABASE_URL = "sqlite:///data/runstream.db"
DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024


class Server:
    """``Server(workflows=[...])``, then ``.serve(port=7777)`` or mount ``.app`` in any ASGI server.

    ``database_url``: ``sqlite:///PATH`` (default ``RUNSTREAM_DATABASE_URL`` or
    ``data/runstream.db``) or ``postgresql://...``. ``security_key``: clients must
    ``authenticate`` with it (default ``RUNSTREAM_SECURITY_KEY`` or ``OS_SECURITY_KEY``).
    """

    def __init__(
        self,
        workflows: Sequence[Workflow],
        database_url: str | None = None,
        log: EventLog | None = None,
        hub: Hub | None = None,
        security_key: str | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        title: str = "runstream",
    ) -> None:
        self.database_url = database_url or os.environ.get("RUNSTREAM_DATABASE_URL") or DEFAULT_DATABASE_URL
        self.security_key = (
            security_key or os.environ.get("RUNSTREAM_SECURITY_KEY") or os.environ.get("OS_SECURITY_KEY") or None
        )
        self.max_message_size = max_message_size
        self.manager = RunManager(log or open_log(self.database_url), hub or LocalHub(), workflows)
        self.app = self._build_app(title)

    def _build_app(self, title: str) -> FastAPI:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            await self.manager.start()
            try:
                yield
            finally:
                await self.manager.close()

        app = FastAPI(title=title, lifespan=lifespan)
        app.state.server = self
        app.include_router(router)

        @app.websocket("/workflows/ws")
        async def workflows_ws(websocket: WebSocket) -> None:
            await WorkflowSocket(websocket, self.manager, self.security_key, self.max_message_size).serve()

        return app

    def serve(self, host: str = "0.0.0.0", port: int = 7777, **uvicorn_options: Any) -> None:
        """Run the server in this process until interrupted."""
        options: dict[str, Any] = {"ws_max_size": self.max_message_size, "log_level": "info"}
        options.update(uvicorn_options)
        uvicorn.run(self.app, host=host, port=port, **options)
