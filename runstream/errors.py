"""One exception tree for runstream; every error that reaches a client carries a stable ``code``.

The same code goes out on every transport: the ``code`` of an HTTP error body,
of a WebSocket ``error`` or ``auth_error`` frame, and the Python client raises
the class of that code again (``runstream.client.errors``). People read the
message; programs branch on the code or the class::

    RunstreamError                 runstream_error   (base; never sent as such)
    ├── InvalidRequest             invalid_request   a request's fields are missing or wrong
    │   ├── ProtocolError          protocol_error    a WebSocket frame that breaks the protocol
    │   │   └── MessageTooLarge    message_too_large a frame or request body over the size limit
    │   └── InvalidInput           invalid_input     a run's input fails the workflow's schema
    ├── Unauthorized               unauthorized      no credentials, or wrong ones
    │   └── TokenExpired           token_expired     a valid token past its expiry: get a fresh one
    ├── Forbidden                  forbidden         the token's scopes do not allow the action
    ├── LimitExceeded              limit_exceeded    a configured limit was reached (base)
    │   ├── RateLimited            rate_limited      too many runs started in the last minute
    │   ├── TooManyRuns            too_many_runs     too many runs running (the user's)
    │   ├── QueueFull              queue_full        the replica's run slots are taken and the run queue is full
    │   ├── TooManyConnections     too_many_connections  too many sockets and streams from one address
    │   ├── TooManySubscriptions   too_many_subscriptions  one socket follows too many runs
    │   ├── IdleTimeout            idle_timeout      a socket silent too long (then closed)
    │   └── TooSlow                too_slow          a reader stayed behind a live run (then closed)
    ├── AuthConfigError            auth_config       inconsistent auth settings (at start, never sent)
    ├── UnknownWorkflow            unknown_workflow
    ├── UnknownRun                 unknown_run
    ├── UnknownSession             unknown_session
    ├── UnknownDatabase            unknown_database  a ``db_id`` the server does not have
    ├── RunNotActive               run_not_active    the action needs a running run
    ├── SessionActive              session_active    deleting a session while one of its runs runs
    ├── RunNotPaused               run_not_paused    a continue of a run that is not (or no longer) paused
    ├── InvalidContinue            invalid_continue  a continue's answer does not fit the stored requirement
    ├── ShuttingDown               shutting_down     the server takes no new runs
    ├── LogWriteFailed             log_write_failed  the event log could not be written
    ├── StepFailed                 step_failed       a step failed for good
    ├── ModelError                 model_error       a model provider refused or broke a request
    ├── DatabaseInUse              database_in_use   another server holds this SQLite file
    └── AmbiguousRunId             ambiguous_run_id  a short run id that several runs' ids start with

A new error is a class here with its own ``code`` (and a place in the tree
above), plus its HTTP status in ``runstream.server.http_errors``; a test
fails while either is missing.
"""

from __future__ import annotations

__all__ = [
    "RunstreamError",
    "InvalidRequest",
    "ProtocolError",
    "MessageTooLarge",
    "InvalidInput",
    "Unauthorized",
    "TokenExpired",
    "Forbidden",
    "LimitExceeded",
    "RateLimited",
    "TooManyRuns",
    "QueueFull",
    "TooManyConnections",
    "TooManySubscriptions",
    "IdleTimeout",
    "TooSlow",
    "AuthConfigError",
    "UnknownWorkflow",
    "UnknownRun",
    "UnknownSession",
    "UnknownDatabase",
    "RunNotActive",
    "SessionActive",
    "RunNotPaused",
    "InvalidContinue",
    "LogWriteFailed",
    "ShuttingDown",
    "StepFailed",
    "ModelError",
    "error_class",
    "DatabaseInUse",
    "AmbiguousRunId",
]


class RunstreamError(Exception):
    """Base of every error runstream raises on purpose."""

    code = "runstream_error"


class InvalidRequest(RunstreamError):
    """A request whose fields are missing, of the wrong type or out of range (an unreached event index)."""

    code = "invalid_request"


class ProtocolError(InvalidRequest):
    """A client frame or a server message that does not follow the protocol."""

    code = "protocol_error"


class MessageTooLarge(ProtocolError):
    """A WebSocket frame or HTTP request body longer than the server's ``max_message_size``."""

    code = "message_too_large"


class InvalidInput(InvalidRequest):
    """The run's input does not match the workflow's input schema."""

    code = "invalid_input"


class Unauthorized(RunstreamError):
    """The request carries no credentials, or wrong ones."""

    code = "unauthorized"


class TokenExpired(Unauthorized):
    """The token was valid and has expired: get a fresh one and authenticate again."""

    code = "token_expired"


class Forbidden(RunstreamError):
    """The caller is known but its scopes do not allow the action."""

    code = "forbidden"


class LimitExceeded(RunstreamError):
    """A configured limit was reached; ``retry_after``: seconds until it may pass, when known."""

    code = "limit_exceeded"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(LimitExceeded):
    """Too many runs started by one user (or address) in the last minute."""

    code = "rate_limited"


class TooManyRuns(LimitExceeded):
    """Too many runs of one user running at once."""

    code = "too_many_runs"


class QueueFull(LimitExceeded):
    """This replica runs ``max_concurrent_runs`` already and ``max_queued_runs`` runs wait in
    the queue: the run is refused, not queued (retry later, or raise the limits)."""

    code = "queue_full"


class TooManyConnections(LimitExceeded):
    """Too many WebSockets and SSE streams open from one client address."""

    code = "too_many_connections"


class TooManySubscriptions(LimitExceeded):
    """One socket already follows as many runs as it may."""

    code = "too_many_subscriptions"


class IdleTimeout(LimitExceeded):
    """A socket said nothing (and followed nothing) for too long; it is closed."""

    code = "idle_timeout"


class TooSlow(LimitExceeded):
    """A reader stayed behind a live run past the server's lag limit; it is closed and reconnects."""

    code = "too_slow"


class AuthConfigError(RunstreamError):
    """The server's authentication settings are inconsistent (raised at start, never to a client)."""

    code = "auth_config"


class UnknownWorkflow(RunstreamError):
    code = "unknown_workflow"

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"Workflow {workflow_id} not found")
        self.workflow_id = workflow_id


class UnknownRun(RunstreamError):
    code = "unknown_run"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"Run {run_id} not found")
        self.run_id = run_id


class UnknownSession(RunstreamError):
    code = "unknown_session"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id} not found")
        self.session_id = session_id


class UnknownDatabase(RunstreamError):
    """A ``db_id`` (AgentOS clients may send one) other than the event log's, ``runstream``."""

    code = "unknown_database"


class RunNotActive(RunstreamError):
    """The action needs a running run (cancel), and this one has ended."""

    code = "run_not_active"


class SessionActive(RunstreamError):
    """A session cannot be deleted while one of its runs is running: cancel it, or wait for its end."""

    code = "session_active"

    def __init__(self, session_ids: set[str]) -> None:
        super().__init__(f"Session(s) {sorted(session_ids)} have a running run; cancel it or wait for its end")
        self.session_ids = session_ids


class RunNotPaused(RunstreamError):
    """A continue for a run that is not waiting for a person: it never paused, it finished,
    or another continue (or the pause's timeout) answered first."""

    code = "run_not_paused"


class InvalidContinue(RunstreamError):
    """A continue whose answer does not fit the paused run's stored requirement
    (unresolved, wrong type, not an allowed value, not a route)."""

    code = "invalid_continue"


class LogWriteFailed(RunstreamError):
    """A run's events could not be written to the log; the run stops here and is left to recovery."""

    code = "log_write_failed"


class ShuttingDown(RunstreamError):
    """The server is stopping and takes no new runs; its running runs resume at its next start."""

    code = "shutting_down"


class StepFailed(RunstreamError):
    """A step failed for good (it timed out or raised on its last try); the run ends with ``WorkflowError``."""

    code = "step_failed"


class ModelError(RunstreamError):
    """A model provider refused or broke a request (auth, unknown model, cut stream)."""

    code = "model_error"


class DatabaseInUse(RunstreamError):
    """Another server process holds this SQLite file: two would take each other's runs over."""

    code = "database_in_use"


class AmbiguousRunId(RunstreamError):
    """A short run id that more than one run's id starts with: give more of it."""

    code = "ambiguous_run_id"


def error_class(code: str) -> type[RunstreamError] | None:
    """The class of runstream's error ``code`` (``unknown_run`` -> ``UnknownRun``), or None."""
    pending: list[type[RunstreamError]] = [RunstreamError]
    while pending:
        kind = pending.pop()
        if kind.code == code and kind.__module__ == __name__:
            return kind
        pending.extend(kind.__subclasses__())
    return None
