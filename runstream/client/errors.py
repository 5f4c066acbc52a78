"""What a client raises: the server's error, or a connection that must be re-established."""

from __future__ import annotations

from runstream.errors import RunstreamError

__all__ = ["ConnectionLost", "ServerError"]


class ServerError(RunstreamError):
    """The server refused a request; ``code`` is its stable error code (``unknown_run``...)."""

    def __init__(self, detail: str, code: str = "server_error", status: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status


class ConnectionLost(RunstreamError):
    """The stream ended before the run's terminal event (dropped, or the server shut down): reconnect."""

    code = "connection_lost"
