"""LocalHub and Subscriber: the in-process fan-out every hub builds on."""

from __future__ import annotations

import asyncio

import pytest

from runstream.events import StoredEvent
from runstream.fanout import LocalHub, open_hub

pytestmark = pytest.mark.anyio


def batch(start: int, stop: int) -> list[StoredEvent]:
    return [StoredEvent(i, "RunContent", "{}") for i in range(start, stop)]


def test_publish_reaches_every_subscriber_of_that_run_only() -> None:
    hub = LocalHub()
    first, second, other = hub.subscribe("r1"), hub.subscribe("r1"), hub.subscribe("r2")
    hub.publish("r1", batch(0, 3))
    assert list(first.buffer) == list(second.buffer) == batch(0, 3)
    assert not other.buffer and not other.wakeup.is_set()
    assert first.wakeup.is_set()
    hub.unsubscribe(first)
    hub.publish("r1", batch(3, 4))
    assert list(first.buffer) == batch(0, 3)
    assert hub.subscriber_count("r1") == 1
    hub.unsubscribe(second)
    assert hub.subscriber_count("r1") == 0


def test_a_subscriber_past_its_limit_drops_its_buffer_and_reads_the_log() -> None:
    hub = LocalHub(buffer_limit=4)
    subscriber = hub.subscribe("r1")
    hub.publish("r1", batch(0, 3))
    hub.publish("r1", batch(3, 6))
    assert not subscriber.buffer and subscriber.overflowed
    assert subscriber.clear_overflow()
    hub.publish("r1", batch(6, 8))
    assert list(subscriber.buffer) == batch(6, 8) and not subscriber.overflowed


def test_mark_gap_wakes_the_reader_and_sends_it_to_the_log() -> None:
    subscriber = LocalHub().subscribe("r1")
    subscriber.mark_gap()
    assert subscriber.overflowed and subscriber.wakeup.is_set()


async def test_cancel_requests_reach_the_owner_registered_on_the_hub() -> None:
    hub = LocalHub()
    cancelled: list[str] = []
    await hub.serve_cancels("node-a", cancelled.append)
    assert await hub.request_cancel("node-a", "r1")
    assert not await hub.request_cancel("node-b", "r2")
    assert cancelled == ["r1"]


def test_open_hub_is_local_without_a_redis_url() -> None:
    assert isinstance(open_hub(None), LocalHub)
    assert isinstance(open_hub(""), LocalHub)
    assert type(open_hub("redis://127.0.0.1:6379/0")).__name__ == "RedisHub"


async def test_a_reader_takes_the_next_events_in_order_and_a_hole_sends_it_to_the_log() -> None:
    subscriber = LocalHub().subscribe("r1")
    subscriber.push(batch(0, 5))
    assert subscriber.take(2, 2) == batch(2, 4)  # those before 2 are dropped: the reader has them
    assert subscriber.take(4, 10) == batch(4, 5) and subscriber.take(5, 10) == []
    assert not subscriber.clear_overflow()
    subscriber.push(batch(7, 9))
    assert subscriber.take(5, 10) == [] and subscriber.clear_overflow()  # 5 and 6 are not here
    assert not subscriber.clear_overflow()
    assert not await subscriber.wait(0.01)  # nothing came
    asyncio.get_running_loop().call_soon(subscriber.push, batch(9, 10))
    assert await subscriber.wait(30) and subscriber.take(9, 10) == batch(9, 10)
