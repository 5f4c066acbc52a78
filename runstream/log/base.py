"""The event log: a run is an append-only, indexed list of events.

Live streaming, catch-up, replay, SSE, other replicas and a restarted server
all read it. Backends (``sqlite``, ``postgres``) share this interface and the
same tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Protocol

from runstream.events import StoredEvent

__all__ = [
    "EventLog", "FINISHED_STATUSES", "RunRecord", "RunEnd", "Session", "SessionQuery", "RunStatus", "AppendBatch",
    "SESSION_SORT_KEYS",
]


class RunStatus(StrEnum):
    """A run's stored status (the ``status`` column and field); ``runs/lifecycle.py`` owns the
    transitions between them."""

    QUEUED = "queued"
    """Accepted, waiting for a slot on some replica; nothing of it has run."""
    RUNNING = "running"
    """Owned by a live server (or left to recovery, which resumes it)."""
    PAUSED = "paused"
    """Waiting for a person: no task holds it; its log ends with the pause event."""
    COMPLETED = "completed"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Ended for good: nothing more is ever logged for the run."""
        return self in FINISHED_STATUSES


FINISHED_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.ERROR, RunStatus.CANCELLED})


@dataclass
class RunRecord:
    """A run's row: who started what, where it stands, and what it produced."""

    run_id: str
    workflow_id: str
    workflow_name: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    status: RunStatus = RunStatus.RUNNING
    input: Any = None
    output: Any = None
    error: str | None = None
    owner: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    event_count: int = 0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "status": str(self.status),
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "event_count": self.event_count,
        }


@dataclass
class RunEnd:
    """A run's final state, written in the same transaction as its terminal event."""

    status: RunStatus
    output: Any = None
    error: str | None = None
    pause_expires_at: float | None = None
    """With ``PAUSED``: when the pause's timeout fires (Unix time), if it has one."""


@dataclass
class Session:
    """A session: the runs that share a ``session_id`` and its state. It is created with
    its first run (named after that run's input) and deleted with all its runs."""

    session_id: str
    workflow_id: str | None = None
    user_id: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    session_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "session_name": self.session_name,
            "workflow_id": self.workflow_id,
            "user_id": self.user_id,
            "session_state": self.state,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


SESSION_SORT_KEYS = ("created_at", "updated_at", "session_name", "session_id")
"""What sessions can be sorted by."""


@dataclass
class SessionQuery:
    """Which sessions to list and in what order: filters are ANDed, ``session_name``
    matches any part of the name, ignoring case."""

    workflow_id: str | None = None
    user_id: str | None = None
    session_name: str | None = None
    sort_by: str = "updated_at"
    descending: bool = True
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.sort_by not in SESSION_SORT_KEYS:
            raise ValueError(f"sessions cannot be sorted by {self.sort_by!r}; use one of {list(SESSION_SORT_KEYS)}")


AppendBatch = dict[str, tuple[list[StoredEvent], RunEnd | None]]
"""Per run id: the events to append (consecutive indices) and, last, its end."""


class EventLog(Protocol):
    """Storage of runs and their events. Every method is safe to call concurrently."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create_run(self, run: RunRecord) -> None:
        """Insert the run and, in the same transaction, its session when it is new (named
        after the run's input), else mark the session updated."""
        ...

    async def append(self, batch: AppendBatch) -> None:
        """Write every event of ``batch`` and each run's end in one transaction."""
        ...

    async def read(self, run_id: str, start: int, limit: int) -> list[StoredEvent]:
        """Events with ``start <= index``, in order, at most ``limit``."""
        ...

    async def next_index(self, run_id: str) -> int:
        """The index the run's next event would get (its number of events, unless pruned)."""
        ...

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def list_runs(
        self,
        workflow_id: str | None = None,
        status: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        run_id_prefix: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first; ``run_id_prefix`` keeps those whose id starts with it (``attach de82``)."""
        ...

    async def claim_run(self, run_id: str, owner: str | None, expected_owner: str | None) -> bool:
        """Take over a running run whose owner is ``expected_owner`` (``owner=None`` disowns it,
        leaving it to recovery); False if someone else did."""
        ...

    async def set_status(self, run_id: str, expected: RunStatus, status: RunStatus, owner: str | None) -> bool:
        """Move a run from ``expected`` to ``status``, now owned by ``owner``, if it still is
        ``expected`` (compare and set: of several servers, one wins); False if it was not.
        How a paused or queued run is taken up again (``runs/lifecycle.py``)."""
        ...

    async def running_runs(self) -> list[RunRecord]: ...

    async def take_paused(self, run_id: str, owner: str) -> bool:
        """Turn a paused run into a running one owned by ``owner``, atomically: of two
        continues (or a continue and the pause's timeout), on any replicas, exactly one
        gets True."""
        ...

    async def reopen_pause(self, run_id: str, owner: str, expires_at: float | None) -> bool:
        """Turn a running run owned by ``owner`` back into a paused one (``take_paused`` undone):
        recovery does this for a run whose log still ends with its ``WorkflowPaused``, its taker
        having died before it could log the answer. False if the run is not so held."""
        ...

    async def expired_pauses(self, now: float, limit: int = 100) -> list[str]:
        """Paused runs whose pause timeout is due at ``now`` (Unix time), oldest first."""
        ...

    async def renew_lease(self, owner: str, ttl: float) -> None:
        """Say ``owner`` is alive for ``ttl`` more seconds (by the database's clock),
        and forget leases that have expired: a missing lease means a dead owner."""
        ...

    async def release_lease(self, owner: str) -> None:
        """Give up ``owner``'s lease at once, so its running runs are orphans now."""
        ...

    async def live_owners(self) -> set[str]:
        """Owners whose lease has not expired; running runs of any other owner are orphans."""
        ...

    async def ping(self) -> None:
        """Return once the database answers a query (``/ready``); raise if it cannot."""
        ...

    async def count_runs(self) -> dict[tuple[str, str], int]:
        """How many runs there are, by ``(workflow_id, status)`` (``/metrics``)."""
        ...

    async def prune_runs(self, finished_before: float, keep_outputs: bool, limit: int = 100) -> int:
        """Delete the events of at most ``limit`` runs that finished before ``finished_before``
        (a Unix time) and, unless ``keep_outputs``, their rows too; returns how many runs."""
        ...

    async def get_session(self, session_id: str) -> Session | None: ...

    async def save_session(self, session: Session) -> None:
        """Upsert ``session``'s state; a null ``workflow_id``/``user_id`` keeps the stored one,
        and the stored name is kept."""
        ...

    async def list_sessions(self, query: SessionQuery | None = None) -> list[Session]: ...

    async def count_sessions(self, query: SessionQuery | None = None) -> int:
        """How many sessions match ``query``'s filters (its order and page aside)."""
        ...

    async def rename_session(self, session_id: str, session_name: str) -> bool:
        """False when there is no such session."""
        ...

    async def delete_sessions(self, session_ids: Sequence[str]) -> set[str]:
        """Delete the sessions with their runs and those runs' events, in one transaction.
        If any of them has a running or queued run, delete nothing and return those sessions' ids."""
        ...

    async def enqueue_run(self, run: RunRecord, first: StoredEvent, max_queued: int | None) -> bool:
        """Insert ``run`` (status ``queued``, no owner) with its first event, as ``create_run``
        does, unless ``max_queued`` runs are queued already (False: nothing is written)."""
        ...

    async def claim_queued(self, owner: str, limit: int, workflow_ids: Sequence[str]) -> list[RunRecord]:
        """Take up to ``limit`` of the oldest queued runs of ``workflow_ids`` (by creation),
        now ``running`` and owned by ``owner``, oldest first. Of several replicas claiming at
        once, each run goes to exactly one."""
        ...
