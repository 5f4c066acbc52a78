"""RedisHub: two hubs in one process stand for two replicas on one real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from runstream.events import StoredEvent
from runstream.fanout.base import Subscriber
from runstream.fanout.redis import RUN_CHANNEL, RedisHub
from tests.waiting import until

pytestmark = pytest.mark.anyio


def batch(start: int, stop: int) -> list[StoredEvent]:
    return [StoredEvent(i, "RunContent", f'{{"event_index": {i}, "content": "\\"w{i}\\" "}}') for i in range(start, stop)]


def run_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def hubs(redis_url: str) -> AsyncIterator[tuple[RedisHub, RedisHub]]:
    a, b = RedisHub(redis_url), RedisHub(redis_url)
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def remote_subscriber(hub: RedisHub, run: str) -> Subscriber:
    """Subscribe, and wait until Redis confirms (the hub then marks a gap: read the log)."""
    subscriber = hub.subscribe(run)
    await until(lambda: subscriber.overflowed)
    subscriber.clear_overflow()
    return subscriber


async def test_a_batch_published_on_one_node_reaches_the_other_nodes_subscribers(hubs: tuple[RedisHub, RedisHub]) -> None:
    a, b = hubs
    run = run_id()
    local = a.subscribe(run)
    remote = [await remote_subscriber(b, run), b.subscribe(run)]
    a.publish(run, batch(0, 3))
    assert list(local.buffer) == batch(0, 3)  # at once, before Redis
    a.publish(run, batch(3, 5))
    for subscriber in remote:
        await until(lambda s=subscriber: len(s.buffer) == 5)  # type: ignore[misc]
        assert list(subscriber.buffer) == batch(0, 5)


async def test_a_node_ignores_its_own_batches_coming_back_from_redis(hubs: tuple[RedisHub, RedisHub]) -> None:
    a, b = hubs
    first, second = run_id(), run_id()
    on_a = await remote_subscriber(a, first)
    on_b = await remote_subscriber(b, first)
    a.publish(first, batch(0, 2))
    await until(lambda: len(on_b.buffer) == 2)
    # Redis has queued a's own batch for a before b publishes this, on the same connection:
    # once a sees b's batch, it has handled (and skipped) its own.
    marker = await remote_subscriber(a, second)
    b.publish(second, batch(0, 1))
    await until(lambda: len(marker.buffer) == 1)
    assert list(on_a.buffer) == batch(0, 2)


async def test_redis_channel_is_held_from_first_to_last_local_subscriber(
    hubs: tuple[RedisHub, RedisHub], redis_url: str
) -> None:
    _, b = hubs
    run = run_id()
    client = redis.Redis.from_url(redis_url)

    async def listeners() -> int:
        [(_, count)] = await client.pubsub_numsub(RUN_CHANNEL + run)
        return int(count)

    async def none_left() -> bool:
        return await listeners() == 0

    try:
        first = await remote_subscriber(b, run)
        second = b.subscribe(run)
        assert await listeners() == 1
        b.unsubscribe(first)
        b.unsubscribe(second)
        await until(lambda: none_left(), 10, what="the hub to drop its Redis subscription")
        assert b.subscriber_count(run) == 0
    finally:
        await client.aclose()


async def test_a_full_outbox_drops_the_oldest_batches_and_readers_see_the_gap(redis_url: str) -> None:
    a, b = RedisHub(redis_url, outbox_limit=2), RedisHub(redis_url)
    await a.start()
    await b.start()
    try:
        run = run_id()
        remote = await remote_subscriber(b, run)
        for i in range(5):  # no await between: the sender task cannot run, the outbox overflows
            a.publish(run, batch(i, i + 1))
        await until(lambda: len(remote.buffer) == 2)
        assert list(remote.buffer) == batch(3, 5)
    finally:
        await a.close()
        await b.close()


async def test_close_sends_what_is_still_queued(redis_url: str) -> None:
    a, b = RedisHub(redis_url), RedisHub(redis_url)
    await a.start()
    await b.start()
    try:
        run = run_id()
        remote = await remote_subscriber(b, run)
        a.publish(run, batch(0, 4))
        await a.close()
        await until(lambda: len(remote.buffer) == 4)
    finally:
        await b.close()


async def test_a_cancel_request_reaches_the_owner_on_another_node(hubs: tuple[RedisHub, RedisHub]) -> None:
    a, b = hubs
    owner = f"owner-{uuid.uuid4().hex}"
    cancelled: list[str] = []
    await a.serve_cancels(owner, cancelled.append)
    assert await b.request_cancel(owner, "run-1")
    await until(lambda: cancelled == ["run-1"])
    assert await a.request_cancel(owner, "run-2")  # its own owner: no round trip through Redis
    assert cancelled == ["run-1", "run-2"]
    assert not await b.request_cancel(f"gone-{uuid.uuid4().hex}", "run-3")


async def test_after_losing_its_redis_connection_a_node_resubscribes_and_marks_the_gap(
    hubs: tuple[RedisHub, RedisHub], redis_url: str
) -> None:
    a, b = hubs
    run = run_id()
    remote = await remote_subscriber(b, run)
    admin = redis.Redis.from_url(redis_url)
    try:
        killed = [
            await admin.client_kill_filter(_id=client["id"])
            for client in await admin.client_list(_type="pubsub")
            if client["name"] == f"runstream-{b.node}"
        ]
    finally:
        await admin.aclose()
    assert killed == [1]
    await until(lambda: remote.overflowed)  # resubscribed: its reader goes back to the log
    a.publish(run, batch(0, 2))
    await until(lambda: len(remote.buffer) == 2)
    assert list(remote.buffer) == batch(0, 2)


async def test_a_malformed_message_is_skipped_and_the_node_goes_on(hubs: tuple[RedisHub, RedisHub], redis_url: str) -> None:
    a, b = hubs
    run = run_id()
    remote = await remote_subscriber(b, run)
    client = redis.Redis.from_url(redis_url)
    try:
        await client.publish(RUN_CHANNEL + run, b"not json")
    finally:
        await client.aclose()
    a.publish(run, batch(0, 1))
    await until(lambda: len(remote.buffer) == 1)
    assert list(remote.buffer) == batch(0, 1)
