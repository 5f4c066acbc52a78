"""Starts runs in the background, resumes, cancels and interrupts them.

A run belongs to no socket: it goes on when every client has left. Each active
run has a ``Lifecycle`` (what it may do next), a ``LogSink`` (where its events
go: numbered, serialized once, through the appender: log first, then fan-out)
and the ``RunContext`` its steps see; ``_activate`` makes the three.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from runstream import events as ev
from runstream.engine.context import RunContext
from runstream.engine.serialize import to_jsonable
from runstream.engine.workflow import Workflow
from runstream.engine.hitl import Resolution, StepRequirement, resolve, timeout_resolution
from runstream.errors import (
    LogWriteFailed, QueueFull, RunNotActive, RunNotPaused, ShuttingDown, UnknownRun, UnknownWorkflow,
)
from runstream.events import StoredEvent
from runstream.fanout.base import Hub
from runstream.log.base import EventLog, RunRecord, RunStatus
from runstream.logjson import RUN_ID
from runstream.models.base import close_model
from runstream.runs.appender import Appender
from runstream.runs.follow import follow, follow_batches
from runstream.runs.lifecycle import Lifecycle, RunState
from runstream.runs.pauses import continued_event, paused_requirement
from runstream.runs.queue import RunQueue
from runstream.runs.recovery import DEFAULT_LEASE_TTL, ResumePlan, Recovery, load_resume_plan
from runstream.runs.sink import LogSink

__all__ = ["CancelOutcome", "RunManager"]

logger = logging.getLogger(__name__)

_LEFTOVER = {
    RunStatus.CANCELLED: (ev.WORKFLOW_CANCELLED, {"reason": "cancelled by request"}),
    RunStatus.ERROR: (ev.WORKFLOW_ERROR, {"error": "The run stopped without an end", "error_type": "RunAborted"}),
}


@dataclass(frozen=True)
class CancelOutcome:
    """The answer to a cancel request: ``status`` is ``cancelling`` until
    ``WorkflowCancelled`` is logged; ``already_requested`` for a repeated cancel."""

    run_id: str
    already_requested: bool = False
    status: str = RunState.CANCELLING


@dataclass
class _ActiveRun:
    record: RunRecord
    context: RunContext
    life: Lifecycle
    sink: LogSink


class RunManager:
    """The runs of one server process over a shared log and hub.

    ``max_concurrent_runs``: runs this process executes at once (None: no cap); a run
    started past it is queued in the log, and started here or on any replica with a free
    slot. ``max_queued_runs``: how many runs may wait (None: no bound); past it a start is
    refused with ``QueueFull``."""

    def __init__(
        self,
        log: EventLog,
        hub: Hub,
        workflows: Iterable[Workflow],
        owner: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        max_concurrent_runs: int | None = None,
        max_queued_runs: int | None = None,
    ) -> None:
        self.log = log
        self.hub = hub
        self.workflows = {w.id: w for w in workflows}
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.accepting = True
        self._closed = False
        self._handing_over = False
        """Closing with a grace: each run stops at its next step boundary."""
        self.recovery = Recovery(log, self.owner, self.resume, lease_ttl, self.workflows, sweep=self.sweep_pauses)
        self._active: dict[str, _ActiveRun] = {}
        self._appender: Appender | None = None
        self._models: dict[int, object] = {}
        """The models runs here used, shared by their contexts: closed by ``close``."""
        self.queue = RunQueue(self, max_concurrent_runs, max_queued_runs, poll=lease_ttl / 3)
        """Runs past ``max_concurrent_runs`` wait in the log (``runs/queue.py``)."""

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        await self.log.open()
        await self.hub.start()
        await self.hub.serve_cancels(self.owner, self._cancel_for_replica)
        await self.hub.serve_handovers(self.recovery.wake)
        await self.hub.serve_queue(self.queue.heard)
        self._appender = Appender(self.log, self.hub)
        self._appender.start()
        await self.recovery.start()
        await self.queue.start()

    def stop_accepting(self) -> None:
        """Refuse new runs from now on (``start_run`` raises ``ShuttingDown``)."""
        self.accepting = False

    async def close(self, grace: float = 0.0) -> None:
        """Stop local runs without ending them, flush, hand them over, close.

        With ``grace``, each run goes on to the end of the top-level step it is in (at
        most ``grace`` seconds), so that none of its steps runs twice; then, or at once
        without it, the runs left are interrupted mid-step. A stopped run logs nothing
        more and stays ``running``; other replicas are told at once (``announce_handover``)
        and resume it from there, as does the next server to start on this log. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        self.stop_accepting()
        await self.queue.close()
        await self.recovery.close()
        tasks = [a.life.task for a in self._active.values() if a.life.task is not None]
        if grace > 0 and tasks:
            self._handing_over = True
            await self.log.renew_lease(self.owner, self.recovery.ttl)  # the beat has stopped: last the grace out
            await asyncio.wait(tasks, timeout=grace)
        for active in list(self._active.values()):
            active.life.interrupt("the server is shutting down")
        await asyncio.gather(*(a.life.task for a in list(self._active.values()) if a.life.task), return_exceptions=True)
        await self._close_models()
        if self._appender is not None:
            await self._appender.close()
            await self.recovery.release()
            await self.hub.announce_handover(self.owner)
        await self.hub.close()
        await self.log.close()

    async def _close_models(self) -> None:
        """Release the models' HTTP sessions: they belong to this event loop, which is ending."""
        models = list(self._models.values())
        results = await asyncio.gather(*(close_model(m) for m in models), return_exceptions=True)
        for model, result in zip(models, results):
            if isinstance(result, Exception):
                logger.warning("closing model %r failed: %s", getattr(model, "id", model), result)

    @property
    def appender(self) -> Appender:
        assert self._appender is not None, "RunManager.start() was not awaited"
        return self._appender

    # -- runs --------------------------------------------------------------

    def workflow(self, workflow_id: str) -> Workflow:
        try:
            return self.workflows[workflow_id]
        except KeyError:
            raise UnknownWorkflow(workflow_id) from None

    async def start_run(
        self,
        workflow_id: str,
        message: Any,
        session_id: str | None = None,
        user_id: str | None = None,
        additional_data: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Create the run and start it in the background; returns at once."""
        if not self.accepting:
            raise ShuttingDown("Server is shutting down and takes no new runs; retry after its restart")
        workflow = self.workflow(workflow_id)
        validated = workflow.validate_input(message)
        session_id = session_id or str(uuid.uuid4())
        record = RunRecord(
            run_id=str(uuid.uuid4()),
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            session_id=session_id,
            user_id=user_id,
            input=to_jsonable(message),
            owner=self.owner,
            created_at=time.time(),
        )
        session = await self.log.get_session(session_id)
        if self.queue.waiting or not self.queue.reserve():
            await self.queue.put(record, additional_data)
            return record
        try:
            await self.log.create_run(record)
            active = self._activate(record, session.state if session else {})
        finally:
            self.queue.release()
        self._launch(active, lambda: workflow.run(active.context, validated, additional_data))
        return record

    def start_queued(self, record: RunRecord) -> None:
        """Start a run this process just claimed from the queue, in the background, with the
        request its ``WorkflowQueued`` (event 0) holds. Active at once: a cancel that comes
        before its task begins ends it with ``WorkflowCancelled`` and nothing else."""
        workflow = self.workflow(record.workflow_id)
        active = self._activate(record, {}, next_index=1)

        async def body() -> None:
            request = await self.queue.request_of(record.run_id)
            session = await self.log.get_session(record.session_id) if record.session_id else None
            active.context.session_state.update(session.state if session else {})
            additional_data = request.get("additional_data") if request else None
            await workflow.run(active.context, workflow.validate_input(record.input), additional_data)

        self._launch(active, body)

    async def resume(self, record: RunRecord) -> None:
        """Continue a run claimed from a dead owner from its last completed step, in the background.
        ``UnknownWorkflow`` if its workflow is not served here: recovery then gives it back."""
        workflow = self.workflow(record.workflow_id)
        plan = await load_resume_plan(self.log, record.run_id)
        if await self._reopen_pause(record, plan):
            return
        session = await self.log.get_session(record.session_id) if record.session_id else None
        active = self._activate(record, session.state if session else {}, next_index=plan.next_index)
        active.context.completed_steps = plan.completed
        active.context.started_steps, active.context.resolutions = plan.started, plan.resolutions
        active.context.answered = plan.answered
        self._launch(active, lambda: self._continue(active, workflow, plan))

    async def _reopen_pause(self, record: RunRecord, plan: ResumePlan) -> bool:
        """A run whose log still ends with its ``WorkflowPaused`` was taken by a continue whose
        server died before the answer was logged (nor acknowledged): it waits again, as it was."""
        last = await self.log.read(record.run_id, plan.next_index - 1, 1) if plan.next_index else []
        if not last or last[0].name != ev.WORKFLOW_PAUSED:
            return False
        expires_at = orjson.loads(last[0].data).get("expires_at")
        if await self.log.reopen_pause(record.run_id, self.owner, expires_at):
            logger.info("run %s is paused again: the continue that took it was never logged", record.run_id)
        return True

    async def _continue(self, active: _ActiveRun, workflow: Workflow, plan: ResumePlan) -> None:
        record, emit = active.record, active.context.emit
        # claimed from the queue, its owner died before its start: nothing but its request is logged
        request = await self.queue.request_of(record.run_id) if plan.next_index == 1 else None
        if plan.blocked_by is not None:
            name = plan.blocked_by.name
            await emit(ev.WORKFLOW_ERROR, _lost(f"Run was interrupted in a step that cannot be re-run: {name!r}"))
        elif plan.next_index == 0 or request is not None:  # nothing of it ran: start it afresh
            additional_data = request.get("additional_data") if request else None
            await workflow.run(active.context, workflow.validate_input(record.input), additional_data)
        else:
            await emit(ev.WORKFLOW_RESUMED, plan.resumed_fields(workflow.steps))
            await workflow.run(active.context, workflow.validate_input(record.input), resumed=True)

    def _activate(
        self, record: RunRecord, session_state: dict[str, Any], next_index: int = 0, state: RunState = RunState.RUNNING
    ) -> _ActiveRun:
        """The one place where a run's lifecycle, sink and context are made, logging from ``next_index``."""
        life = Lifecycle(record.run_id, state)
        sink = LogSink(record, life, self.appender, self.log, session_state, next_index, self._at_completion)
        context = RunContext(
            run_id=record.run_id,
            workflow_id=record.workflow_id,
            workflow_name=record.workflow_name or record.workflow_id,
            sink=sink,
            session_id=record.session_id,
            user_id=record.user_id,
            session_state=session_state,
            models=self._models,
        )
        active = self._active[record.run_id] = _ActiveRun(record, context, life, sink)
        return active

    def _launch(self, active: _ActiveRun, body: Callable[[], Awaitable[None]] | None) -> None:
        """Give the run its task: ``body`` (None: only what its lifecycle still owes, such as
        the ``WorkflowCancelled`` of a paused run)."""
        active.life.task = asyncio.create_task(self._drive(active, body), name=f"runstream-run-{active.record.run_id}")

    async def _at_completion(self, sink: LogSink, fields: dict[str, Any]) -> None:
        """After a completion event: while handing over, stop at this step boundary (to resume elsewhere)."""
        if self._handing_over and self._hands_over_after(sink.record, fields):
            await self.appender.durable(sink.record.run_id)
            if sink.life.interrupt("handed over at a step boundary"):
                raise asyncio.CancelledError

    def _hands_over_after(self, record: RunRecord, fields: dict[str, Any]) -> bool:
        """Whether a completion ends a top-level step with more to come (after the last one,
        the run ends here rather than be resumed elsewhere only to end)."""
        path = fields.get("step_path")
        workflow = self.workflows.get(record.workflow_id)
        if not isinstance(path, str) or not path.isdigit() or workflow is None:
            return False
        return int(path) < len(workflow.steps) - 1 and not fields.get("stop", False)

    async def _drive(self, active: _ActiveRun, body: Callable[[], Awaitable[None]] | None) -> None:
        """Run ``body``, then log the end its lifecycle still owes (a cancel's, or an error if
        it stopped without one). An interrupted run is not ended: it stays ``running``, to be
        resumed. Only the lifecycle cancels this task, and only once."""
        life, error = active.life, None
        RUN_ID.set(active.record.run_id)  # this task's own context: its log lines carry the run id
        try:
            if life.begin() and body is not None:
                await body()
        except LogWriteFailed as exc:
            self._strand(active, exc)
        except asyncio.CancelledError:
            if life.state is RunState.RUNNING:  # not the lifecycle's cancel: the event loop is closing
                life.interrupt("its task was cancelled")
                self._forget(active)
                raise
        except Exception as exc:  # a broken log or a stored input that no longer validates
            logger.exception("run %s failed outside its steps", active.record.run_id)
            error = exc
        try:
            owed = life.leftover()
            if owed is not None:
                name, fields = _LEFTOVER[owed]
                if owed is RunStatus.ERROR and error is not None:
                    fields = {"error": str(error), "error_type": type(error).__name__}
                if owed is RunStatus.CANCELLED:
                    fields = {**fields, "cancellation_stage": life.cancellation_stage}
                await active.sink.emit(name, fields)
                await self.appender.durable(active.record.run_id)
        except LogWriteFailed as exc:
            self._strand(active, exc)
        finally:
            self._forget(active)

    def _forget(self, active: _ActiveRun) -> None:
        self._active.pop(active.record.run_id, None)
        self.appender.failed.pop(active.record.run_id, None)
        self.queue.wake()  # a slot is free: the next queued run may start here

    def _strand(self, active: _ActiveRun, exc: LogWriteFailed) -> None:
        """Stop a run whose events cannot be written. Recovery disowns it once the log answers
        again, so that it (here or on another replica) resumes from what the log holds."""
        active.life.write_failed(str(exc))
        self.recovery.strand(active.record.run_id)

    # -- pauses ------------------------------------------------------------

    async def continue_run(
        self, run_id: str, step_requirements: Any = None, error_requirements: Any = None
    ) -> int:
        """Answer a paused run's requirement and run it on, here, in the background; returns
        the index of its ``WorkflowPaused`` (the events of the continue follow it).

        The answer is checked against the requirement in the log (``InvalidContinue``, the
        pause stays). Of concurrent continues, on any replicas, one wins; the others, and a
        continue of a run that is not paused, get ``RunNotPaused``. A pause whose timeout has
        expired takes its ``on_timeout`` instead, and the late answer gets ``RunNotPaused``.
        """
        record = await self.get_run(run_id)
        if record.status != RunStatus.PAUSED:
            raise RunNotPaused(f"Run is not paused (status={record.status})")
        index, req = await paused_requirement(self.log, record)
        if req.expires_at is not None and req.expires_at <= time.time():
            await self._take_up(record, req, timeout_resolution(req))
            raise RunNotPaused(
                f"Run {run_id}'s pause timed out; its on_timeout ({req.on_timeout}) was applied instead"
            )
        await self._take_up(record, req, resolve(req, step_requirements, error_requirements))
        return index

    async def sweep_pauses(self) -> list[str]:
        """Apply ``on_timeout`` to every pause whose timeout is due (recovery's beat calls this on
        every replica; each pause is taken by one). Returns the runs it answered."""
        fired = []
        for run_id in await self.log.expired_pauses(time.time()):
            record = await self.log.get_run(run_id)
            if record is None or record.status != RunStatus.PAUSED:
                continue
            try:
                _, req = await paused_requirement(self.log, record)
                await self._take_up(record, req, timeout_resolution(req))
            except (RunNotPaused, UnknownWorkflow, ShuttingDown):
                continue  # answered meanwhile, or not ours to run: another replica's sweep takes it
            logger.info("pause of run %s timed out: %s", run_id, req.on_timeout)
            fired.append(run_id)
        return fired

    async def _take_up(self, record: RunRecord, req: StepRequirement, resolution: Resolution) -> None:
        """Take a paused run (atomically: one taker wins), log the answer, run it on from its log."""
        workflow = self.workflow(record.workflow_id)
        if not self.accepting:
            raise ShuttingDown("Server is shutting down; continue the run after its restart")
        if not await self.log.take_paused(record.run_id, self.owner):
            raise RunNotPaused(f"Run {record.run_id} is not paused any more: another continue answered first")
        record.status, record.owner = RunStatus.RUNNING, self.owner
        plan = await load_resume_plan(self.log, record.run_id)
        session = await self.log.get_session(record.session_id) if record.session_id else None
        active = self._activate(record, session.state if session else {}, plan.next_index, RunState.PAUSED)
        active.life.activate()
        ctx = active.context
        ctx.completed_steps, ctx.started_steps, ctx.resolutions = plan.completed, plan.started, plan.resolutions
        ctx.resolutions[resolution.requirement_id] = resolution
        ctx.answered = [*plan.answered, req.answered(resolution)]
        try:  # the answer is in the log before the continue is acknowledged, or before a step acts on it
            await ctx.emit(*continued_event(req, resolution))
            await self.appender.durable(record.run_id)
        except LogWriteFailed as exc:
            self._strand(active, exc)  # recovery gives it back its pause: the log still ends with it
            self._forget(active)
            raise
        self._launch(active, lambda: workflow.run(ctx, workflow.validate_input(record.input), resumed=True))

    async def cancel(self, run_id: str) -> CancelOutcome:
        """Cancel a run, here or on the replica that runs it; it ends with one ``WorkflowCancelled``.

        Idempotent while the cancel is under way: a repeated request is answered with
        ``already_requested``. ``RunNotActive`` once the run has ended."""
        outcome = self._cancel_here(run_id)
        if outcome is not None:
            return outcome
        record = await self.log.get_run(run_id)
        if record is None:
            raise UnknownRun(run_id)
        if record.status in (RunStatus.PAUSED, RunStatus.QUEUED):
            try:
                return await self._cancel_idle(record)
            except RunNotActive:  # a replica started it meanwhile: cancel it where it runs now
                if record.status is not RunStatus.QUEUED:
                    raise
                return await self.cancel(run_id)
        if record.status != RunStatus.RUNNING:
            raise RunNotActive(f"Run {run_id} is not running (status: {record.status})")
        if record.owner is None or record.owner == self.owner:
            raise RunNotActive(f"Run {run_id} is not running here (status: {record.status})")
        if not await self.hub.request_cancel(record.owner, run_id):
            raise RunNotActive(f"Run {run_id} is owned by {record.owner}, which cannot be reached")
        return CancelOutcome(run_id)

    def _cancel_here(self, run_id: str) -> CancelOutcome | None:
        """Cancel ``run_id`` if this process runs it (also what other replicas' requests call)."""
        active = self._active.get(run_id)
        if active is None:
            return None
        return CancelOutcome(run_id, already_requested=not active.life.cancel())

    def _cancel_for_replica(self, run_id: str) -> None:
        """Another replica's cancel request for a run here; a run that has ended meanwhile has nothing to cancel."""
        try:
            self._cancel_here(run_id)
        except RunNotActive as exc:
            logger.info("cancel of run %s from another replica: %s", run_id, exc)

    async def _cancel_idle(self, record: RunRecord) -> CancelOutcome:
        """A paused or queued run has no task: take it and log its ``WorkflowCancelled`` here."""
        if not await self.log.set_status(record.run_id, record.status, RunStatus.RUNNING, self.owner):
            raise RunNotActive(f"Run {record.run_id} changed while it was being cancelled; try again")
        session = await self.log.get_session(record.session_id) if record.session_id else None
        idle = RunState(record.status)
        record.status, record.owner = RunStatus.RUNNING, self.owner
        active = self._activate(record, session.state if session else {}, await self.log.next_index(record.run_id), idle)
        active.life.cancel()
        self._launch(active, None)
        return CancelOutcome(record.run_id)

    async def wait(self, run_id: str) -> None:
        """Return when a run started here has ended and its last event is in the log."""
        active = self._active.get(run_id)
        if active is not None and active.life.task is not None:
            await asyncio.gather(active.life.task, return_exceptions=True)

    # -- reading -----------------------------------------------------------

    async def get_run(self, run_id: str) -> RunRecord:
        record = await self.log.get_run(run_id)
        if record is None:
            raise UnknownRun(run_id)
        return record

    def follow(self, run_id: str, after: int = -1) -> AsyncIterator[StoredEvent]:
        """Every event of a run after index ``after``, from the log, then live, through its end."""
        return follow(self.log, self.hub, run_id, after)

    def follow_batches(self, run_id: str, after: int = -1) -> AsyncIterator[list[StoredEvent]]:
        """``follow`` in the batches it reads them in, for transports that write a batch at once."""
        return follow_batches(self.log, self.hub, run_id, after)

    def head(self, run_id: str) -> int | None:
        """The index of the last event of a run running here (None: not running here)."""
        active = self._active.get(run_id)
        return None if active is None else active.sink.next_index - 1

    def running_here(self, user_id: str | None = None) -> int:
        """Runs this process is running now (of ``user_id``, when given): what limits count."""
        if user_id is None:
            return len(self._active)
        return sum(1 for a in self._active.values() if a.record.user_id == user_id)


def _lost(error: str) -> dict[str, Any]:
    """The fields of the ``WorkflowError`` that ends a run which cannot be resumed."""
    return {"error": error, "error_type": "ResumeFailed"}
