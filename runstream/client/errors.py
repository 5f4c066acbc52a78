"""What a client raises: the server's error, typed by its code, or a connection to re-establish.

A refusal with a code of runstream's tree (``runstream.errors``) is raised as
that class and as ``ServerError`` at once, so ``except UnknownRun`` works the
same against a remote server as in-process, and ``except ServerError`` still
catches every refusal. A code the client does not know stays a ``ServerError``.
"""

from __future__ import annotations

from runstream.errors import RunstreamError, error_class

__all__ = ["ConnectionLost", "ServerError", "server_error"]


class ServerError(RunstreamError):
    """The server refused a request; ``code`` is its stable error code (``unknown_run``...),
    ``status`` the HTTP status (None over WebSocket)."""

    def __init__(self, detail: str, code: str = "server_error", status: int | None = None) -> None:
        RunstreamError.__init__(self, detail)  # not the domain class's, which takes other arguments
        self.code = code
        self.status = status


class ConnectionLost(RunstreamError):
    """The stream ended before the run's terminal event (dropped, or the server shut down): reconnect."""

    code = "connection_lost"


_TYPED: dict[type[RunstreamError], type[ServerError]] = {}


def server_error(detail: str, code: str, status: int | None = None) -> ServerError:
    """The error to raise for a refusal ``code``: ``ServerError`` and the domain class of the code."""
    domain = error_class(code)
    if domain is None or domain is RunstreamError:
        return ServerError(detail, code, status)
    kind = _TYPED.get(domain)
    if kind is None:
        kind = type(domain.__name__, (ServerError, domain), {"__module__": __name__, "__doc__": domain.__doc__})
        _TYPED[domain] = kind
    return kind(detail, code, status)
