"""``/workflows/ws``: the AgentOS WebSocket protocol over the run manager.

One receive loop per socket answers actions in order; each run the socket
follows is streamed by its own task, so the socket keeps answering (``ping``,
``cancel-workflow``) while events flow. Closing the socket stops those tasks,
never the runs. Events go out in the batches the run manager reads them in.

Authentication is in-band (``authenticate``); every action then goes through
the ``Gate`` the HTTP routes use. When the socket's token expires it is told
(``auth_error`` with code ``token_expired``) and its streams pause, losing
nothing, until it authenticates again; one that does not is closed once idle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from runstream.errors import (
    IdleTimeout,
    LimitExceeded,
    MessageTooLarge,
    ProtocolError,
    RunstreamError,
    TokenExpired,
    TooManySubscriptions,
    TooSlow,
    Unauthorized,
)
from runstream.events import StoredEvent
from runstream.log.base import RunRecord
from runstream.runs.manager import RunManager
from runstream.server.auth import ANONYMOUS, Authenticator, Principal
from runstream.server.channel import Channel, ClientLeft
from runstream.server.gate import Gate
from runstream.server.limits import Counter, Limits
from runstream.server.protocol import (
    Action,
    Authenticate,
    CancelWorkflow,
    ContinueWorkflow,
    Ping,
    Reconnect,
    StartWorkflow,
    control,
    error_frame,
    parse_action,
    plan_reconnect,
)

__all__ = ["WorkflowSocket", "SocketServices", "POLICY_CLOSE"]

logger = logging.getLogger(__name__)

POLICY_CLOSE = 1008
"""The close code of a socket closed for a limit (too many connections, idle, too slow)."""

LAG_SLACK = 256
"""Events a reader may be behind a live run before it counts as lagging (a page: one batch)."""


class SocketServices:
    """What every socket of one server shares: auth, the gate, limits and their counters."""

    __slots__ = ("authenticator", "gate", "limits", "connections")

    def __init__(self, authenticator: Authenticator, gate: Gate, limits: Limits, connections: Counter) -> None:
        self.authenticator = authenticator
        self.gate = gate
        self.limits = limits
        self.connections = connections


class WorkflowSocket:
    """Serves one client connection. Slotted: ten thousand idle ones should cost little."""

    __slots__ = ("channel", "services", "client", "principal", "_streams", "_closing", "_live", "_expiry")

    def __init__(self, channel: Channel, services: SocketServices, client: str) -> None:
        self.channel = channel
        self.services = services
        self.client = client
        self.principal: Principal | None = None if services.authenticator.required else ANONYMOUS
        self._streams: dict[asyncio.Task[None], RunRecord] = {}
        self._closing = False
        self._live = asyncio.Event()  # cleared while the token has expired: streams wait
        self._live.set()
        self._expiry: asyncio.Task[None] | None = None

    @property
    def manager(self) -> RunManager:
        return self.services.gate.manager

    async def serve(self) -> None:
        connections = self.services.connections
        counted = False
        try:
            await self.channel.accept()
            try:
                connections.acquire(self.client)
                counted = True
            except LimitExceeded as exc:
                await self.fail(exc)
                await self.channel.close(POLICY_CLOSE, "too many connections")
                return
            await self.send(
                control(
                    "connected",
                    message="Connected to runstream workflow events",
                    requires_auth=self.services.authenticator.required,
                )
            )
            while (message := await self._read()) is not None:
                await self._on_frame(message)
        except ClientLeft:
            return
        finally:
            if counted:
                connections.release(self.client)
            if self._expiry is not None:
                self._expiry.cancel()
            for task in self._streams:
                task.cancel()
            await asyncio.gather(*self._streams, return_exceptions=True)

    async def _read(self) -> str | bytes | None:
        """The next frame; None when the client left or stayed silent past the idle timeout
        while following nothing (or while unauthenticated)."""
        idle = self.services.limits.idle_timeout
        while True:
            if idle is None:
                return await self.channel.read()
            try:
                async with asyncio.timeout(idle):
                    return await self.channel.read()
            except TimeoutError:
                if self._streams and self.principal is not None:
                    continue
                await self.fail(IdleTimeout(f"Closing a socket idle for {idle:g} s"))
                await self.channel.close(POLICY_CLOSE, "idle timeout")
                return None

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

    async def fail(self, exc: RunstreamError, event: str = "error", **fields: Any) -> None:
        """Send ``exc`` as an ``error`` (or ``auth_error``) frame with its code; the socket stays open."""
        if isinstance(exc, LimitExceeded) and exc.retry_after is not None:
            fields["retry_after"] = round(exc.retry_after, 1)
        frame = error_frame(exc, event)
        if fields:
            frame = control(event, error=str(exc), code=exc.code, **fields)
        await self.send(frame)

    async def _on_frame(self, text: str | bytes) -> None:
        """Answer one frame; a refusal is an ``error`` frame with its code, and the socket stays open."""
        try:
            if isinstance(text, bytes):
                raise ProtocolError("Binary frames are not supported; send JSON text frames")
            limit = self.services.limits.max_message_size
            if len(text) > limit:
                raise MessageTooLarge(f"Message too large: {len(text)} bytes (limit {limit})")
            await self._dispatch(parse_action(text))
        except RunstreamError as exc:
            await self.fail(exc)

    async def _dispatch(self, action: Action) -> None:
        if isinstance(action, Ping):
            await self.send(control("pong"))
            return
        if isinstance(action, Authenticate):
            await self._authenticate(action.token)
            return
        principal = self.principal
        if principal is None:
            raise Unauthorized("Authentication required: send {\"action\": \"authenticate\", \"token\": ...} first")
        gate = self.services.gate
        if isinstance(action, StartWorkflow):
            self._check_subscriptions()
            record = await gate.start_run(
                principal, self.client, action.workflow_id, action.message, action.session_id, action.user_id,
                action.additional_data,
            )
            self._stream(record, after=-1)
        elif isinstance(action, Reconnect):
            self._check_subscriptions()
            run = await gate.run(principal, action.run_id, action.workflow_id)
            count = await self.manager.log.next_index(run.run_id)
            plan = plan_reconnect(run, action.last_event_index, count)
            await self.send(plan.notice)
            self._stream(run, plan.after, plan.subscribe_after, plan.subscribed)
        elif isinstance(action, CancelWorkflow):
            outcome = await gate.cancel(principal, action.run_id)
            await self.send(
                control(
                    "cancel_requested",
                    run_id=outcome.run_id,
                    status=outcome.status,
                    already_requested=outcome.already_requested,
                    message="Already being cancelled" if outcome.already_requested else "Cancelling the run",
                )
            )
        elif isinstance(action, ContinueWorkflow):
            await self._continue(principal, action)

    async def _continue(self, principal: Principal, action: ContinueWorkflow) -> None:
        """Answer a paused run (only the caller's own, under isolation); its events from the
        continue on come to this socket, unless it follows the run already, and to every
        other subscriber of the run."""
        run = await self.services.gate.steerable_run(principal, action.run_id, action.workflow_id)
        followed = any(r.run_id == run.run_id for r in self._streams.values())
        if not followed:
            self._check_subscriptions()
        index = await self.manager.continue_run(run.run_id, action.step_requirements, action.error_requirements)
        if not followed:
            self._stream(run, after=index)

    def _check_subscriptions(self) -> None:
        limit = self.services.limits.max_subscriptions
        if limit is not None and len(self._streams) >= limit:
            raise TooManySubscriptions(
                f"This socket follows {limit} runs already (limit {limit}); open another or wait for one to end"
            )

    async def _authenticate(self, token: str) -> None:
        try:
            principal = await self.services.authenticator.authenticate(token)
        except RunstreamError as exc:
            await self.fail(exc, "auth_error")
            return
        if principal.expired():
            await self.fail(TokenExpired("Token has expired"), "auth_error")
            return
        self.principal = principal
        for task, run in list(self._streams.items()):  # a new identity keeps only what it may read
            if not self.services.gate.access.may_read(principal, run):
                task.cancel()
        self._schedule_expiry(principal)
        self._live.set()
        await self.send(control("authenticated", message="Authenticated", user_id=principal.user_id,
                                expires_at=principal.expires_at))

    def _schedule_expiry(self, principal: Principal) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if principal.expires_at is not None:
            self._expiry = asyncio.create_task(self._expire_at(principal.expires_at))

    async def _expire_at(self, deadline: float) -> None:
        """At the token's expiry: pause the streams, and say why."""
        await asyncio.sleep(max(0.0, deadline - time.time()))
        self._expiry = None
        self.principal = None
        self._live.clear()
        try:
            await self.fail(TokenExpired("Token has expired: authenticate again to go on"), "auth_error")
        except ClientLeft:
            logger.debug("client left before its expiry notice")

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._streams.pop(task, None)

    def _stream(
        self, run: RunRecord, after: int, subscribe_after: int | None = None, subscribed: str | None = None
    ) -> None:
        if self._closing:
            return
        task = asyncio.create_task(self._pump(run.run_id, after, subscribe_after, subscribed))
        self._streams[task] = run
        task.add_done_callback(self._forget)

    async def _pump(self, run_id: str, after: int, subscribe_after: int | None, subscribed: str | None) -> None:
        max_lag = self.services.limits.max_lag
        behind_since: float | None = None
        try:
            async for batch in self.manager.follow_batches(run_id, after):
                if not self._live.is_set():
                    await self._live.wait()
                    behind_since = None
                if subscribed is not None and subscribe_after is not None and batch[-1].index >= subscribe_after:
                    frames: Any = _frames(batch, subscribe_after, subscribed)
                    subscribed = None
                else:
                    frames = batch
                if max_lag is None:
                    await self.channel.write(frames)
                    continue
                try:
                    async with asyncio.timeout(max_lag):
                        await self.channel.write(frames)
                except TimeoutError:
                    await self._too_slow(run_id, batch[0].index - 1, max_lag)
                    return
                head = self.manager.head(run_id)
                if head is None or head - batch[-1].index <= LAG_SLACK:
                    behind_since = None
                elif behind_since is None:
                    behind_since = time.monotonic()
                elif time.monotonic() - behind_since > max_lag:
                    await self._too_slow(run_id, batch[-1].index, max_lag)
                    return
        except ClientLeft:
            logger.debug("client left while run %s streamed; the run goes on", run_id)

    async def _too_slow(self, run_id: str, last_sent: int, max_lag: float) -> None:
        """Disconnect a reader that stayed behind past ``max_lag``: it reconnects with its last index."""
        logger.info("closing a reader of run %s behind for over %g s", run_id, max_lag)
        try:
            async with asyncio.timeout(1.0):
                await self.fail(
                    TooSlow(f"Disconnected: this reader stayed behind run {run_id} for over {max_lag:g} s; "
                            "reconnect with your last event_index"), run_id=run_id, last_event_index=last_sent,
                )
        except (TimeoutError, ClientLeft):
            pass
        try:
            await self.channel.close(POLICY_CLOSE, "reader too slow")
        except ClientLeft:
            pass


def _frames(batch: list[StoredEvent], notice_after: int, notice: str) -> Iterator[StoredEvent | str]:
    """The batch, with ``notice`` after the event ``notice_after`` (the end of a catch-up)."""
    for event in batch:
        yield event
        if event.index == notice_after:
            yield notice
