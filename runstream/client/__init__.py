"""A Python client for runstream servers: ``Client`` (async) and ``SyncClient``."""

from runstream.client.client import DEFAULT_URL, Client, Transport
from runstream.client.cursor import Backoff, FollowCursor, SSEParser
from runstream.client.errors import ConnectionLost, ServerError
from runstream.client.event import Event
from runstream.client.run import Run
from runstream.client.sync import SyncClient
from runstream.client.transcript import Transcript

__all__ = [
    "DEFAULT_URL",
    "Backoff",
    "Client",
    "ConnectionLost",
    "Event",
    "FollowCursor",
    "Run",
    "SSEParser",
    "ServerError",
    "SyncClient",
    "Transcript",
    "Transport",
]
