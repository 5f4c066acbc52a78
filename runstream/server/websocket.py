"""``/workflows/ws``: the AgentOS WebSocket protocol over the run manager.

One receive loop per socket answers actions in order; each run the socket
follows is streamed by its own task, so the socket keeps answering (``ping``,
``cancel-workflow``) while events flow. Closing the socket stops those tasks,
never the runs. Events go out in the batches the run manager reads them in.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterator

from runstream.errors import MessageTooLarge, ProtocolError, RunstreamError, Unauthorized
from runstream.events import StoredEvent
from runstream.runs.manager import RunManager
from runstream.server.channel import Channel, ClientLeft
from runstream.server.protocol import (
    Action,
    Authenticate,
    CancelWorkflow,
    Ping,
    Reconnect,
    StartWorkflow,
    control,
    error_frame,
    parse_action,
    plan_reconnect,
)

__all__ = ["WorkflowSocket"]

logger = logging.getLogger(__name__)


class WorkflowSocket:
    """Serves one client connection. Slotted: ten thousand idle ones should cost little."""

    __slots__ = ("channel", "manager", "security_key", "max_message_size", "authenticated", "_streams", "_closing")

    def __init__(
        self, channel: Channel, manager: RunManager, security_key: str | None, max_message_size: int
    ) -> None:
        self.channel = channel
        self.manager = manager
        self.security_key = security_key
        self.max_message_size = max_message_size
        self.authenticated = security_key is None
        self._streams: set[asyncio.Task[None]] = set()
        self._closing = False

    async def serve(self) -> None:
        try:
            await self.channel.accept()
            await self.send(
                control(
                    "connected",
                    message="Connected to runstream workflow events",
                    requires_auth=self.security_key is not None,
                )
            )
            while (message := await self.channel.read()) is not None:
                await self._on_frame(message)
        except ClientLeft:
            return
        finally:
            for task in self._streams:
                task.cancel()
            await asyncio.gather(*self._streams, return_exceptions=True)

    async def shutdown(self) -> None:
        """The server is stopping: stop streaming, tell the client (it should reconnect with
        its last ``event_index``, after the restart or to another replica), close with 1012."""
        self._closing = True
        for task in self._streams:
            task.cancel()
        await asyncio.gather(*self._streams, return_exceptions=True)
        notice = control(
            "server_shutdown",
            message="Server is shutting down; reconnect with your last event_index to continue",
            reconnect=True,
        )
        try:
            await self.send(notice)
            await self.channel.close(1012, "server restart")
        except ClientLeft:
            logger.debug("client left before the shutdown notice")

    async def send(self, text: str) -> None:
        await self.channel.write((text,))

    async def _on_frame(self, text: str | bytes) -> None:
        """Answer one frame; a refusal is an ``error`` frame with its code, and the socket stays open."""
        try:
            if isinstance(text, bytes):
                raise ProtocolError("Binary frames are not supported; send JSON text frames")
            if len(text) > self.max_message_size:
                raise MessageTooLarge(f"Message too large: {len(text)} bytes (limit {self.max_message_size})")
            await self._dispatch(parse_action(text))
        except RunstreamError as exc:
            await self.send(error_frame(exc))

    async def _dispatch(self, action: Action) -> None:
        if isinstance(action, Ping):
            await self.send(control("pong"))
        elif isinstance(action, Authenticate):
            await self._authenticate(action.token)
        elif not self.authenticated:
            raise Unauthorized("Authentication required: send {\"action\": \"authenticate\", \"token\": ...} first")
        elif isinstance(action, StartWorkflow):
            record = await self.manager.start_run(
                action.workflow_id, action.message, action.session_id, action.user_id, action.additional_data
            )
            self._stream(record.run_id, after=-1)
        elif isinstance(action, Reconnect):
            await self._reconnect(action)
        elif isinstance(action, CancelWorkflow):
            outcome = await self.manager.cancel(action.run_id)
            await self.send(
                control(
                    "cancel_requested",
                    run_id=outcome.run_id,
                    status=outcome.status,
                    already_requested=outcome.already_requested,
                    message="Already being cancelled" if outcome.already_requested else "Cancelling the run",
                )
            )

    async def _authenticate(self, token: str) -> None:
        if self.security_key is None or hmac.compare_digest(token.encode(), self.security_key.encode()):
            self.authenticated = True
            await self.send(control("authenticated", message="Authenticated"))
        else:
            await self.send(error_frame(Unauthorized("Invalid token"), "auth_error"))

    async def _reconnect(self, action: Reconnect) -> None:
        run = await self.manager.get_run(action.run_id)
        count = await self.manager.log.next_index(run.run_id)
        plan = plan_reconnect(run, action.last_event_index, count)
        await self.send(plan.notice)
        self._stream(run.run_id, plan.after, plan.subscribe_after, plan.subscribed)

    def _stream(
        self, run_id: str, after: int, subscribe_after: int | None = None, subscribed: str | None = None
    ) -> None:
        if self._closing:
            return
        task = asyncio.create_task(self._pump(run_id, after, subscribe_after, subscribed))
        self._streams.add(task)
        task.add_done_callback(self._streams.discard)

    async def _pump(self, run_id: str, after: int, subscribe_after: int | None, subscribed: str | None) -> None:
        try:
            async for batch in self.manager.follow_batches(run_id, after):
                if subscribed is not None and subscribe_after is not None and batch[-1].index >= subscribe_after:
                    await self.channel.write(_frames(batch, subscribe_after, subscribed))
                    subscribed = None
                else:
                    await self.channel.write(batch)
        except ClientLeft:
            logger.debug("client left while run %s streamed; the run goes on", run_id)


def _frames(batch: list[StoredEvent], notice_after: int, notice: str) -> Iterator[StoredEvent | str]:
    """The batch, with ``notice`` after the event ``notice_after`` (the end of a catch-up)."""
    for event in batch:
        yield event
        if event.index == notice_after:
            yield notice
