"""Live fan-out backends: in-process by default, Redis across replicas."""

from runstream.fanout.base import Hub, Subscriber
from runstream.fanout.local import LocalHub

__all__ = ["Hub", "LocalHub", "Subscriber", "open_hub"]


def open_hub(redis_url: str | None = None) -> Hub:
    """A ``RedisHub`` for ``redis://...`` (replicas sharing one log), else a ``LocalHub``."""
    if not redis_url:
        return LocalHub()
    from runstream.fanout.redis import RedisHub

    return RedisHub(redis_url)
