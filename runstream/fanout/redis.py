"""Fan-out across replicas: Redis pub/sub in front of the shared log.

A replica hands its runs' events to its own subscribers at once and PUBLISHes
each batch on the run's channel; a replica SUBSCRIBEs to a run's channel while
it has local subscribers to that run. Redis is only the fast path: a message
that is lost or late costs latency, never an event, because ``follow`` fills
every gap from the log and re-reads it while idle. Cancel requests for a run
go to its owner on a channel of the owner's own. A replica that shuts down says so
on one channel for all, so that the others take its runs over at once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import redis.asyncio as redis
from redis.asyncio.client import PubSub

from runstream.events import StoredEvent
from runstream.fanout.base import Subscriber
from runstream.fanout.local import LocalHub

__all__ = ["RedisHub", "RUN_CHANNEL", "CANCEL_CHANNEL", "HANDOVER_CHANNEL"]

logger = logging.getLogger(__name__)

RUN_CHANNEL = "runstream:run:"
"""Prefix of a run's channel (``runstream:run:<run_id>``): one message per appended batch."""
CANCEL_CHANNEL = "runstream:cancel:"
"""Prefix of an owner's channel (``runstream:cancel:<owner>``): run ids to cancel."""
HANDOVER_CHANNEL = "runstream:handover"
"""Owners that just gave up their runs (a graceful shutdown): every replica scans for them at once."""
QUEUE_CHANNEL = "runstream:queued"
"""Owners that just queued a run (every slot of theirs taken): a replica with room claims it at once."""

RETRY_DELAY = 1.0
"""Seconds between attempts while Redis is unreachable (readers fall back on the log meanwhile)."""
REDIS_TIMEOUT = 5.0
"""Seconds before connecting or a command (not the wait for messages) counts as failed."""
SUBSCRIBE_TIMEOUT = 10.0
"""Seconds ``serve_cancels`` waits for Redis to confirm the owner's channel."""


def encode(node: str, events: Sequence[StoredEvent]) -> bytes:
    """A batch as ``[node, [[index, name, data], ...]]``; ``node`` lets a replica skip its own."""
    return orjson.dumps([node, [[e.index, e.name, e.data] for e in events]])


def decode(payload: bytes) -> tuple[str, list[StoredEvent]]:
    node, events = orjson.loads(payload)
    return node, [StoredEvent(index, name, data) for index, name, data in events]


class RedisHub(LocalHub):
    """``RedisHub("redis://host:6379/0")``: live events and cancels for replicas sharing one log.

    Publishing never waits on Redis: batches queue in a bounded outbox (the
    oldest are dropped when Redis falls behind) that a background task sends.
    """

    def __init__(self, url: str, buffer_limit: int = 4096, outbox_limit: int = 10_000) -> None:
        super().__init__(buffer_limit)
        self.url = url
        self.node = uuid.uuid4().hex
        self._outbox: deque[tuple[str, Sequence[StoredEvent]]] = deque(maxlen=outbox_limit)
        self._outbox_ready = asyncio.Event()
        self._closing = False
        self._wanted: set[str] = set()  # runs with local subscribers
        self._listening: set[str] = set()  # runs whose channel we asked Redis for
        self._channels_changed = asyncio.Event()
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._redis: redis.Redis | None = None
        self._pubsub: PubSub | None = None
        self._sender: asyncio.Task[None] | None = None
        self._readers: list[asyncio.Task[None]] = []

    @property
    def client(self) -> redis.Redis:
        assert self._redis is not None, "RedisHub.start() was not awaited"
        return self._redis

    @property
    def pubsub(self) -> PubSub:
        assert self._pubsub is not None, "RedisHub.start() was not awaited"
        return self._pubsub

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Connect (failing at once if Redis is unreachable) and start the background tasks."""
        self._redis = redis.Redis.from_url(
            self.url,
            client_name=f"runstream-{self.node}",  # tells replicas apart in CLIENT LIST
            socket_connect_timeout=REDIS_TIMEOUT,
            socket_timeout=REDIS_TIMEOUT,
        )
        self._pubsub = self._redis.pubsub()
        try:
            await self._pubsub.connect()
        except BaseException:
            await self._redis.aclose()
            raise
        self._sender = asyncio.create_task(self._send_outbox(), name="runstream-redis-send")
        self._readers = [
            asyncio.create_task(self._listen(), name="runstream-redis-listen"),
            asyncio.create_task(self._sync_channels(), name="runstream-redis-channels"),
        ]

    async def close(self) -> None:
        """Send what is still queued, then disconnect."""
        self._closing = True
        self._outbox_ready.set()
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._redis is not None:
            await self._redis.aclose()
        await super().close()

    # -- subscribers and publishing ----------------------------------------

    def subscribe(self, run_id: str) -> Subscriber:
        subscriber = super().subscribe(run_id)
        if run_id not in self._wanted:
            self._wanted.add(run_id)
            self._channels_changed.set()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        super().unsubscribe(subscriber)
        if not self.subscriber_count(subscriber.run_id) and subscriber.run_id in self._wanted:
            self._wanted.discard(subscriber.run_id)
            self._channels_changed.set()

    def publish(self, run_id: str, events: Sequence[StoredEvent]) -> None:
        super().publish(run_id, events)
        self._outbox.append((run_id, events))
        self._outbox_ready.set()

    async def _send_outbox(self) -> None:
        while self._outbox or not self._closing:
            if not self._outbox:
                await self._outbox_ready.wait()
                self._outbox_ready.clear()
                continue
            batches = list(self._outbox)
            self._outbox.clear()
            pipe = self.client.pipeline(transaction=False)
            for run_id, events in batches:
                pipe.publish(RUN_CHANNEL + run_id, encode(self.node, events))
            try:
                await pipe.execute()
            except redis.RedisError as exc:
                logger.warning("Redis publish failed (%s); other replicas read those events from the log", exc)

    # -- cancels -----------------------------------------------------------

    async def serve_cancels(self, owner: str, cancel: Callable[[str], object]) -> None:
        await super().serve_cancels(owner, cancel)
        await self._subscribe_confirmed(CANCEL_CHANNEL + owner)

    async def _subscribe_confirmed(self, channel: str) -> None:
        """Subscribe and return once Redis confirms it, so nothing sent afterwards is missed."""
        confirmed = self._confirmations[channel] = asyncio.get_running_loop().create_future()
        await self.pubsub.subscribe(channel)
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
            await confirmed

    async def request_cancel(self, owner: str, run_id: str) -> bool:
        if await super().request_cancel(owner, run_id):
            return True
        try:
            return bool(await self.client.publish(CANCEL_CHANNEL + owner, run_id))
        except redis.RedisError as exc:
            logger.warning("Redis unreachable, cannot ask %s to cancel run %s: %s", owner, run_id, exc)
            return False

    async def serve_handovers(self, handed_over: Callable[[str], None]) -> None:
        await super().serve_handovers(handed_over)
        if len(self._handovers) == 1:  # the first listener subscribes
            await self._subscribe_confirmed(HANDOVER_CHANNEL)

    async def announce_handover(self, owner: str) -> None:
        await super().announce_handover(owner)
        try:
            await self.client.publish(HANDOVER_CHANNEL, owner)
        except redis.RedisError as exc:
            logger.warning("Redis unreachable, other replicas take over %s's runs at their next scan: %s", owner, exc)

    async def serve_queue(self, queued: Callable[[str], None]) -> None:
        await super().serve_queue(queued)
        if len(self._queue_listeners) == 1:  # the first listener subscribes
            await self._subscribe_confirmed(QUEUE_CHANNEL)

    async def announce_queued(self, owner: str) -> None:
        await super().announce_queued(owner)
        try:
            await self.client.publish(QUEUE_CHANNEL, owner)
        except redis.RedisError as exc:
            logger.warning("Redis unreachable, other replicas find %s's queued run at their next poll: %s", owner, exc)

    async def ping(self) -> None:
        await self.client.ping()

    # -- receiving ---------------------------------------------------------

    async def _sync_channels(self) -> None:
        """Keep Redis subscribed to exactly the runs that have local subscribers."""
        while True:
            await self._channels_changed.wait()
            self._channels_changed.clear()
            add, drop = self._wanted - self._listening, self._listening - self._wanted
            try:
                if add:
                    await self.pubsub.subscribe(*(RUN_CHANNEL + run_id for run_id in add))
                    self._listening |= add
                if drop:
                    await self.pubsub.unsubscribe(*(RUN_CHANNEL + run_id for run_id in drop))
                    self._listening -= drop
            except redis.RedisError as exc:
                logger.warning("Redis (un)subscribe failed (%s); retrying", exc)
                await asyncio.sleep(RETRY_DELAY)
                self._channels_changed.set()

    async def _listen(self) -> None:
        while True:
            try:
                message = await self.pubsub.get_message(timeout=None)
            except redis.RedisError as exc:
                logger.warning("Redis pub/sub connection lost (%s); reconnecting", exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            if message is not None:
                self._on_message(message)

    def _on_message(self, message: dict[str, Any]) -> None:
        if message["type"] == "subscribe":
            self._on_subscribed(message["channel"].decode())
        if message["type"] != "message":
            return
        channel = message["channel"].decode()
        if channel.startswith(RUN_CHANNEL):
            self._on_batch(channel.removeprefix(RUN_CHANNEL), message["data"])
        elif channel == HANDOVER_CHANNEL:
            for handed_over in list(self._handovers):
                handed_over(message["data"].decode())
        elif channel == QUEUE_CHANNEL:
            for queued in list(self._queue_listeners):
                queued(message["data"].decode())
        elif channel.startswith(CANCEL_CHANNEL):
            cancel = self._cancellers.get(channel.removeprefix(CANCEL_CHANNEL))
            if cancel is not None:
                cancel(message["data"].decode())

    def _on_batch(self, run_id: str, payload: bytes) -> None:
        try:
            node, events = decode(payload)
        except (ValueError, TypeError):
            logger.warning("ignoring a malformed message for run %s", run_id)
            return
        if node != self.node and events:
            super().publish(run_id, events)

    def _on_subscribed(self, channel: str) -> None:
        """Events published before this moment did not reach us: local readers check the log."""
        confirmed = self._confirmations.pop(channel, None)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)
        if channel.startswith(RUN_CHANNEL):
            for subscriber in self._subscribers.get(channel.removeprefix(RUN_CHANNEL), ()):
                subscriber.mark_gap()
