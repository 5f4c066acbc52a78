"""Crash recovery: a run whose owner died is claimed and resumed from its last completed step.

Each server process holds a lease in the log, renewed every ``ttl / 3``
seconds. A running run is an orphan when its owner has no live lease (it
expired, or was released at shutdown) or is a process of this host that is
gone (so a restart after ``kill -9`` resumes at once, without waiting for the
lease to expire). Any server may claim an orphan: ``claim_run`` compares and
sets the owner, so of several replicas exactly one wins.

Resuming is a fold over the run's own log (history is the truth): the
completion events give back the outputs of the finished steps, which are not
run again; the steps that had started but not completed run again from their
start, unless one of them said it cannot be re-run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from runstream.engine.completion import completed_output
from runstream.engine.hitl import Resolution, StepRequirement
from runstream.engine.io import StepOutput
from runstream.engine.step import StepBase
from runstream.events import (
    COMPLETION_EVENTS,
    START_EVENTS,
    STEP_CONTINUED,
    STEP_EXECUTOR_CONTINUED,
    STEP_STARTED,
    WORKFLOW_PAUSED,
    StoredEvent,
)
from runstream.log.base import EventLog, RunRecord
from runstream.metrics import LEASE_TAKEOVERS

__all__ = [
    "DEFAULT_LEASE_TTL",
    "InterruptedStep",
    "Recovery",
    "ResumePlan",
    "fold_resume_plan",
    "load_resume_plan",
    "owner_process_gone",
]

logger = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = 15.0
"""Seconds a replica's runs stay its own after its last heartbeat."""

_PAGE = 1000


@dataclass(frozen=True)
class InterruptedStep:
    """A part of the run that had started but not completed when its server stopped."""

    path: str
    name: str | None
    rerunnable: bool
    step_id: str | None = None
    started_at: int = 0
    """The index of its start event."""
    leaf: bool = True
    """A ``Step`` (it runs again from its start, emitting all its events anew), not a composite."""


@dataclass
class ResumePlan:
    """What a run's log says about where to resume it."""

    next_index: int = 0
    completed: dict[str, StepOutput] = field(default_factory=dict)
    interrupted: list[InterruptedStep] = field(default_factory=list)
    started: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Parts that announced themselves, with the decisions they logged (``RunContext.started_steps``)."""
    resolutions: dict[str, Resolution] = field(default_factory=dict)
    """The answers to the run's pauses, from its ``StepContinued`` events (``RunContext.resolutions``)."""
    answered: list[dict[str, Any]] = field(default_factory=list)
    """Each answered pause's requirement with its answer, oldest first (``RunContext.answered``)."""
    waiting: StepRequirement | None = None
    """The requirement of the last ``WorkflowPaused``, until a continue answers it."""

    @property
    def blocked_by(self) -> InterruptedStep | None:
        """The interrupted step that must not run twice, if any: the run then ends in error."""
        return next((step for step in self.interrupted if not step.rerunnable), None)

    def resume_index(self, steps: Sequence[StepBase]) -> int | None:
        """The top-level step the run resumes from; None when only its end is left."""
        for index in range(len(steps)):
            output = self.completed.get(str(index))
            if output is None:
                return index
            if output.stop:
                return None
        return None

    def resumed_fields(self, steps: Sequence[StepBase]) -> dict[str, Any]:
        """The fields of the ``WorkflowResumed`` event."""
        index = self.resume_index(steps)
        name = steps[index].name if index is not None else None
        rerun = [step for step in self.interrupted if step.leaf]
        return {
            "resumed_from_step": name,
            "resumed_from_step_index": index,
            "completed_steps": len(self.completed),
            "interrupted_steps": [step.path for step in self.interrupted],
            "superseded_step_ids": [step.step_id for step in rerun if step.step_id],
            "supersedes_from_index": min((step.started_at for step in rerun), default=None),
            "message": f"Resumed from step {name!r}" if name else "Resumed after its last step",
        }


_CONTINUES = frozenset({STEP_CONTINUED, STEP_EXECUTOR_CONTINUED})
_DECISIONS = ("condition_result", "selected_steps")


def _relevant(event: StoredEvent) -> bool:
    return (
        event.name in COMPLETION_EVENTS or event.name in START_EVENTS or event.name in _CONTINUES
        or event.name == WORKFLOW_PAUSED
    )


def fold_resume_plan(events: Iterable[StoredEvent]) -> ResumePlan:
    """Fold a run's events (in order; others than starts and completions may be left out,
    except the last) into the outputs of its completed parts and its interrupted steps."""
    plan = ResumePlan()
    started: dict[str, InterruptedStep] = {}
    for event in events:
        plan.next_index = event.index + 1
        if not _relevant(event):
            continue
        data = orjson.loads(event.data)
        if event.name == WORKFLOW_PAUSED:
            if requirements := data.get("step_requirements"):
                plan.waiting = StepRequirement.from_dict(requirements[-1])
            continue
        if event.name in _CONTINUES:
            if isinstance(answer := data.get("resolution"), dict):
                resolution = Resolution.from_dict(answer)
                plan.resolutions[resolution.requirement_id] = resolution
                if plan.waiting is not None and plan.waiting.requirement_id == resolution.requirement_id:
                    plan.answered.append(plan.waiting.answered(resolution))
                    plan.waiting = None
            continue
        path = data.get("step_path")
        if path is None:
            continue
        if event.name in COMPLETION_EVENTS:
            plan.completed[path] = completed_output(data)
        else:
            started[path] = InterruptedStep(
                path,
                data.get("step_name"),
                data.get("rerunnable", True),
                step_id=data.get("step_id"),
                started_at=event.index,
                leaf=event.name == STEP_STARTED,
            )
            plan.started[path] = {key: data[key] for key in _DECISIONS if key in data}
    plan.interrupted = [step for path, step in started.items() if not _finished(path, plan.completed)]
    _link_children(plan.completed)
    return plan


def _finished(path: str, completed: dict[str, StepOutput]) -> bool:
    """Whether the part at ``path`` or a part around it completed (a router's attempt that
    a review rejected has no completion of its own: the router's covers it)."""
    while path:
        if path in completed:
            return True
        path = path.rpartition(".")[0]
    return False


def _segment_key(path: str) -> tuple[str, int]:
    """Order siblings as the engine does: ``2``, ``10``, ``i2``, ``i10`` by their number."""
    segment = path.rsplit(".", 1)[-1]
    digits = segment.lstrip("abcdefghijklmnopqrstuvwxyz")
    return segment[: len(segment) - len(digits)], int(digits) if digits.isdigit() else 0


def _link_children(completed: dict[str, StepOutput]) -> None:
    """Give composite outputs their children's outputs back, so later steps find them by name
    (a router's, after rejected reviews, only those of its last attempt, as it ran live)."""
    parents = {path: _parent(path) for path in completed}
    last: dict[str, int] = {}
    for parent, attempt in parents.values():
        last[parent] = max(last.get(parent, 0), attempt)
    for path in sorted(completed, key=_segment_key):
        parent, attempt = parents[path]
        if parent and parent in completed and attempt == last[parent]:
            completed[parent].steps.append(completed[path])


def _parent(path: str) -> tuple[str, int]:
    """The part ``path`` is a child of, and the router attempt it ran in (``<p>.r<n>.c<k>``: ``n``)."""
    parent = path.rpartition(".")[0]
    outer, _, segment = parent.rpartition(".")
    if outer and segment[:1] == "r" and segment[1:].isdigit():
        return outer, int(segment[1:])
    return parent, 0


async def load_resume_plan(log: EventLog, run_id: str) -> ResumePlan:
    """Read a run's log, keeping only what resuming needs, and fold it."""
    kept: list[StoredEvent] = []
    start = 0
    while page := await log.read(run_id, start, _PAGE):
        kept.extend(event for event in page if _relevant(event))
        start = page[-1].index + 1
    if start and (not kept or kept[-1].index != start - 1):
        kept.append(StoredEvent(start - 1, "", "{}"))  # only its index matters
    return fold_resume_plan(kept)


def owner_process_gone(owner: str) -> bool:
    """True when ``owner`` (``host:pid:nonce``) names a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Recovery:
    """Keeps this process's lease alive and resumes orphaned runs (and, with ``sweep``, fires
    due pause timeouts): at start-up, then every ``ttl / 3`` s."""

    def __init__(
        self,
        log: EventLog,
        owner: str,
        resume: Callable[[RunRecord], Awaitable[None]],
        ttl: float = DEFAULT_LEASE_TTL,
        served: Container[str] | None = None,
        sweep: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.log = log
        self.owner = owner
        self.resume = resume
        self.ttl = ttl
        self.served = served
        """The workflow ids this server runs (None: all): it claims no run of any other,
        and leaves them to a server that serves them."""
        self.stranded: set[str] = set()
        """Runs of this owner whose log writes failed: disowned as soon as the log answers,
        so that the next scan (here or on another replica) resumes them."""
        self.sweep = sweep
        """Called on every beat too: the run manager fires pause timeouts that are due."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        await self.log.renew_lease(self.owner, self.ttl)
        await self.scan()
        if self.sweep is not None:
            await self.sweep()
        self._task = asyncio.create_task(self._beat(), name="runstream-recovery")

    async def close(self) -> None:
        """Stop renewing and scanning (the lease stays until ``release``)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def wake(self, owner: str) -> None:
        """``owner`` just handed its runs over: scan now rather than at the next beat."""
        if owner != self.owner:
            self._wake.set()

    async def release(self) -> None:
        """Hand this process's runs over to whoever starts next, at once."""
        await self.log.release_lease(self.owner)

    def strand(self, run_id: str) -> None:
        """``run_id``, owned here, stopped because its events could not be written; while its
        owner lives nobody else would resume it, so it is disowned at the next beat that can."""
        self.stranded.add(run_id)

    async def disown_stranded(self) -> None:
        """Give the stranded runs up (``owner`` NULL): each then is an orphan for ``scan``.
        A run already claimed elsewhere, or ended, is simply forgotten."""
        for run_id in sorted(self.stranded):
            await self.log.claim_run(run_id, None, expected_owner=self.owner)
            self.stranded.discard(run_id)
            logger.info("run %s, stopped by a failed log write, is left to recovery", run_id)

    async def scan(self) -> list[str]:
        """Claim and resume every orphaned run of a workflow served here; returns their ids."""
        await self.disown_stranded()
        live = await self.log.live_owners()
        resumed = []
        for run in await self.log.running_runs():
            if run.owner == self.owner or not self._orphaned(run, live):
                continue
            if self.served is not None and run.workflow_id not in self.served:
                logger.debug("run %s of %s is not served here: left for a server that serves it", run.run_id, run.workflow_id)
                continue
            previous = run.owner
            if not await self.log.claim_run(run.run_id, self.owner, previous):
                continue  # another replica was quicker
            LEASE_TAKEOVERS.inc()
            logger.info("resuming run %s of %s (owner %s is gone)", run.run_id, run.workflow_id, previous)
            run.owner = self.owner
            try:
                await self.resume(run)
            except Exception:  # e.g. its log could not be read: give it back, the next scan retries
                logger.exception("could not resume run %s", run.run_id)
                await self.log.claim_run(run.run_id, previous or "", self.owner)
                continue
            resumed.append(run.run_id)
        return resumed

    @staticmethod
    def _orphaned(run: RunRecord, live: set[str]) -> bool:
        return run.owner is None or run.owner not in live or owner_process_gone(run.owner)

    async def _beat(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.ttl / 3):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.log.renew_lease(self.owner, self.ttl)
                await self.scan()
                if self.sweep is not None:
                    await self.sweep()
            except Exception:  # a database hiccup: the next beat tries again
                logger.exception("lease renewal, orphan scan or pause sweep failed")
