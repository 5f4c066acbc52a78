"""A run's lifecycle: its states and the only transitions between them, in one place.

Every start, cancel, pause, failure, completion and interruption of a run goes
through its ``Lifecycle``; the run manager asks it what to do and never
decides on its own. The states, with the stored ``RunStatus`` each shows as::

    queued ──start──▶ running ──terminal event──▶ completed | error | cancelled
      │                │  ▲  │
      │ cancel   cancel│  │  └──pause event──▶ paused ──continue──▶ running
      ▼                ▼  │                      │
    cancelled      cancelling (running)          └──cancel──▶ cancelling
                       │
                       └──WorkflowCancelled──▶ cancelled

    running | cancelling ──interrupt (shutdown, handover) or a failed log write──▶ interrupted (running)

``cancelling`` and ``interrupted`` are this process's own: the log still says
``running``. A cancel is delivered to the run's task at most once, so nothing
can interrupt the writing of its ``WorkflowCancelled``; a second cancel is
answered "already cancelling". An interrupted run logs nothing more and stays
``running`` in the log, for recovery (here or on another replica) to resume.
Exactly one terminal event ends a run, and each end is logged here.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum

from runstream.errors import RunNotActive
from runstream.log.base import RunStatus

__all__ = ["Lifecycle", "RunState"]

logger = logging.getLogger(__name__)


class RunState(StrEnum):
    """Where a run stands in this process: the stored statuses plus two of its own."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ERROR = "error"
    CANCELLED = "cancelled"
    CANCELLING = "cancelling"
    """A cancel was requested; ``WorkflowCancelled`` is not logged yet (stored: running)."""
    INTERRUPTED = "interrupted"
    """Stopped here without an end, left to recovery (stored: running)."""

    @property
    def status(self) -> RunStatus:
        """What the log says of a run in this state."""
        if self in (RunState.CANCELLING, RunState.INTERRUPTED):
            return RunStatus.RUNNING
        return RunStatus(self.value)


_ENDS = {
    RunStatus.COMPLETED: RunState.COMPLETED,
    RunStatus.ERROR: RunState.ERROR,
    RunStatus.CANCELLED: RunState.CANCELLED,
    RunStatus.PAUSED: RunState.PAUSED,
}
_STAGES = {RunState.QUEUED: "PENDING", RunState.PAUSED: "PAUSED"}
_LOGGING = frozenset({RunState.RUNNING, RunState.CANCELLING})
"""States in which a run may log events."""


class Lifecycle:
    """One run's state in this process, and the task that executes it (while it has one)."""

    __slots__ = ("run_id", "state", "task", "began", "reason", "cancelled_from")

    def __init__(self, run_id: str, state: RunState = RunState.RUNNING) -> None:
        self.run_id = run_id
        self.state = state
        self.task: asyncio.Task[None] | None = None
        self.began = False
        """Whether the task has begun its body: a cancel before that must not reach it
        (a task cancelled before its first step never runs its handlers)."""
        self.reason: str | None = None
        """Why the run was interrupted, for the log line."""
        self.cancelled_from: RunState | None = None
        """The state a cancel found the run in (its ``WorkflowCancelled`` says so, as AgentOS's
        ``cancellation_stage``)."""

    @property
    def may_log(self) -> bool:
        """Whether the run may log another event (before its end, and unless interrupted)."""
        return self.state in _LOGGING

    def activate(self) -> None:
        """``queued`` (a slot is free) or ``paused`` (a person answered) -> ``running``."""
        if self.state not in (RunState.QUEUED, RunState.PAUSED):
            raise RunNotActive(f"Run {self.run_id} cannot be started or continued (it is {self.state})")
        self.state = RunState.RUNNING
        self.began = False

    def begin(self) -> bool:
        """The task starts its body; False when a cancel or an interrupt came first (then
        ``leftover`` says what to log instead)."""
        self.began = True
        return self.state is RunState.RUNNING

    def cancel(self) -> bool:
        """A cancel request: True when this one starts the cancel, False when the run is
        already cancelling. ``RunNotActive`` once it has ended or is being handed over.

        The task is cancelled here, once; a queued or paused run has none, and its
        owner logs ``WorkflowCancelled`` itself."""
        if self.state is RunState.CANCELLING:
            return False
        if self.state not in (RunState.RUNNING, RunState.QUEUED, RunState.PAUSED):
            state = "handed over to recovery" if self.state is RunState.INTERRUPTED else self.state
            raise RunNotActive(f"Run {self.run_id} is not running (status: {state})")
        self.state, self.cancelled_from = RunState.CANCELLING, self.state
        if self.began and self.task is not None:
            self.task.cancel()
        return True

    def interrupt(self, reason: str) -> bool:
        """Stop the run here without ending it (shutdown, handover): True when it was
        running and is now interrupted. A cancelling run is left to log its end, and an
        ended one has nothing left to stop."""
        if self.state is not RunState.RUNNING:
            return False
        self.state, self.reason = RunState.INTERRUPTED, reason
        if self.began and self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        return True

    def write_failed(self, reason: str) -> None:
        """The run's events can no longer be written: whatever it was doing, it stops and is
        left to recovery (an end it handed to the log may not have been written)."""
        self.state, self.reason = RunState.INTERRUPTED, reason
        logger.error("run %s: %s; it is left to recovery", self.run_id, reason)

    def end(self, status: RunStatus, error: str | None = None) -> None:
        """The event that ends the run (terminal, or its pause) is being logged."""
        if not self.may_log:
            raise RuntimeError(f"run {self.run_id} is {self.state}; it cannot end as {status}")
        self.state = _ENDS[status]
        if status is RunStatus.ERROR:
            logger.error("run %s failed: %s", self.run_id, error)
        else:
            logger.info("run %s %s", self.run_id, status)

    @property
    def cancellation_stage(self) -> str:
        """AgentOS's name for where a cancel found the run: ``PENDING`` (queued), ``PAUSED``,
        ``EXECUTING``."""
        return _STAGES.get(self.cancelled_from, "EXECUTING") if self.cancelled_from else "EXECUTING"

    def leftover(self) -> RunStatus | None:
        """When the task is over: the end it still has to log (``cancelled`` after a cancel,
        ``error`` if it stopped without one), or None when nothing is owed."""
        if self.state is RunState.CANCELLING:
            return RunStatus.CANCELLED
        if self.state is RunState.RUNNING:
            return RunStatus.ERROR
        if self.state is RunState.INTERRUPTED:
            logger.info("run %s interrupted (%s); it resumes from its log", self.run_id, self.reason)
        return None
