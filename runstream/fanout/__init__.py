"""Live fan-out backends: in-process by default, Redis across replicas."""

from runstream.fanout.base import Hub, Subscriber
from runstream.fanout.local import LocalHub

__all__ = ["Hub", "LocalHub", "Subscriber"]
