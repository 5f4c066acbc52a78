"""In-process fan-out: the default when one server process serves every client."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runstream.events import StoredEvent
from runstream.fanout.base import Subscriber

__all__ = ["LocalHub"]


class LocalHub:
    def __init__(self, buffer_limit: int = 4096) -> None:
        self.buffer_limit = buffer_limit
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._cancellers: dict[str, Callable[[str], object]] = {}
        self._handovers: list[Callable[[str], None]] = []
        self._queue_listeners: list[Callable[[str], None]] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._subscribers.clear()
        self._cancellers.clear()
        self._handovers.clear()
        self._queue_listeners.clear()

    def subscribe(self, run_id: str) -> Subscriber:
        subscriber = Subscriber(run_id, self.buffer_limit)
        self._subscribers.setdefault(run_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(subscriber.run_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[subscriber.run_id]

    def publish(self, run_id: str, events: Sequence[StoredEvent]) -> None:
        for subscriber in self._subscribers.get(run_id, ()):
            subscriber.push(events)

    async def ping(self) -> None:
        return None  # nothing outside this process to reach

    async def serve_cancels(self, owner: str, cancel: Callable[[str], object]) -> None:
        self._cancellers[owner] = cancel

    async def request_cancel(self, owner: str, run_id: str) -> bool:
        cancel = self._cancellers.get(owner)
        if cancel is None:
            return False
        cancel(run_id)
        return True

    async def serve_handovers(self, handed_over: Callable[[str], None]) -> None:
        self._handovers.append(handed_over)

    async def announce_handover(self, owner: str) -> None:
        for handed_over in list(self._handovers):
            handed_over(owner)

    async def serve_queue(self, queued: Callable[[str], None]) -> None:
        self._queue_listeners.append(queued)

    async def announce_queued(self, owner: str) -> None:
        for queued in list(self._queue_listeners):
            queued(owner)

    def subscriber_count(self, run_id: str) -> int:
        return len(self._subscribers.get(run_id, ()))

    def subscribers(self, run_id: str) -> tuple[Subscriber, ...]:
        """The live inboxes of ``run_id``'s readers in this process, to look at."""
        return tuple(self._subscribers.get(run_id, ()))
