"""Starts runs in the background, numbers and logs their events, cancels them.

A run belongs to no socket: it goes on when every client has left. Its events
get their ``event_index`` here, are serialized once, and go through the
appender (log first, then fan-out).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from runstream import events as ev
from runstream.engine.context import RunContext
from runstream.engine.serialize import to_jsonable
from runstream.engine.workflow import Workflow
from runstream.errors import RunNotActive, UnknownRun, UnknownWorkflow
from runstream.events import StoredEvent
from runstream.fanout.base import Hub
from runstream.log.base import EventLog, RunEnd, RunRecord, RunStatus, Session
from runstream.runs.appender import Appender
from runstream.runs.follow import follow

__all__ = ["RunManager"]

logger = logging.getLogger(__name__)

_END_STATUS = {
    ev.WORKFLOW_COMPLETED: RunStatus.COMPLETED,
    ev.WORKFLOW_ERROR: RunStatus.ERROR,
    ev.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
}


@dataclass
class _ActiveRun:
    record: RunRecord
    context: RunContext
    next_index: int = 0
    ended: bool = False
    task: asyncio.Task[None] | None = None
    common: dict[str, Any] = field(default_factory=dict)


class RunManager:
    """The runs of one server process over a shared log and hub."""

    def __init__(self, log: EventLog, hub: Hub, workflows: Iterable[Workflow], owner: str | None = None) -> None:
        self.log = log
        self.hub = hub
        self.workflows = {w.id: w for w in workflows}
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._active: dict[str, _ActiveRun] = {}
        self._appender: Appender | None = None

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        await self.log.open()
        await self.hub.start()
        self._appender = Appender(self.log, self.hub)
        self._appender.start()

    async def close(self) -> None:
        """Cancel local runs (each ends with ``WorkflowCancelled``), flush, close."""
        for active in list(self._active.values()):
            if active.task is not None:
                active.task.cancel()
        await asyncio.gather(*(a.task for a in list(self._active.values()) if a.task), return_exceptions=True)
        if self._appender is not None:
            await self._appender.close()
        await self.hub.close()
        await self.log.close()

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
        await self.log.create_run(record)
        active = self._activate(record, session.state if session else {})
        active.task = asyncio.create_task(self._drive(active, workflow, validated, additional_data))
        return record

    def _activate(self, record: RunRecord, session_state: dict[str, Any], next_index: int = 0) -> _ActiveRun:
        active = _ActiveRun(
            record=record,
            context=RunContext(
                run_id=record.run_id,
                workflow_id=record.workflow_id,
                workflow_name=record.workflow_name or record.workflow_id,
                session_id=record.session_id,
                user_id=record.user_id,
                session_state=session_state,
                emit=None,  # type: ignore[arg-type]  # set just below, it needs the run
            ),
            next_index=next_index,
            common={
                "run_id": record.run_id,
                "session_id": record.session_id,
                "workflow_id": record.workflow_id,
                "workflow_name": record.workflow_name,
            },
        )

        async def emit(name: str, fields: dict[str, Any]) -> None:
            await self._emit(active, name, fields)

        active.context.emit = emit
        self._active[record.run_id] = active
        return active

    async def _emit(self, active: _ActiveRun, name: str, fields: dict[str, Any]) -> None:
        if active.ended:
            raise RuntimeError(f"run {active.record.run_id} has already ended; {name} not logged")
        index = active.next_index
        active.next_index = index + 1
        payload = {"event": name, **active.common, "created_at": int(time.time()), "event_index": index, **fields}
        event = StoredEvent(index, name, orjson.dumps(payload, default=str).decode())
        status = _END_STATUS.get(name)
        end = None
        if status is not None:
            active.ended = True
            end = RunEnd(status, output=fields.get("content"), error=fields.get("error"))
            await self._save_session(active)
        self.appender.add(active.record.run_id, event, end)
        if end is not None or self.appender.congested:
            await self.appender.durable()

    async def _save_session(self, active: _ActiveRun) -> None:
        record = active.record
        if record.session_id is None:
            return
        await self.log.save_session(
            Session(record.session_id, record.workflow_id, record.user_id, to_jsonable(active.context.session_state))
        )

    async def _drive(
        self, active: _ActiveRun, workflow: Workflow, message: Any, additional_data: dict[str, Any] | None
    ) -> None:
        try:
            await workflow.run(active.context, message, additional_data)
        except asyncio.CancelledError:
            if not active.ended:
                await active.context.emit(ev.WORKFLOW_CANCELLED, {"reason": "cancelled by request"})
        except Exception as exc:  # only a broken log gets here: the engine reports step errors itself
            logger.exception("run %s failed outside its steps", active.record.run_id)
            if not active.ended:
                await active.context.emit(ev.WORKFLOW_ERROR, {"error": str(exc), "error_type": type(exc).__name__})
        finally:
            self._active.pop(active.record.run_id, None)

    async def cancel(self, run_id: str) -> None:
        """Cancel a running run; it ends with ``WorkflowCancelled``."""
        active = self._active.get(run_id)
        if active is None or active.task is None:
            record = await self.log.get_run(run_id)
            if record is None:
                raise UnknownRun(run_id)
            raise RunNotActive(f"Run {run_id} is not running here (status: {record.status})")
        active.task.cancel()

    async def wait(self, run_id: str) -> None:
        """Return when a run started here has ended and its last event is in the log."""
        active = self._active.get(run_id)
        if active is not None and active.task is not None:
            await asyncio.gather(active.task, return_exceptions=True)

    # -- reading -----------------------------------------------------------

    async def get_run(self, run_id: str) -> RunRecord:
        record = await self.log.get_run(run_id)
        if record is None:
            raise UnknownRun(run_id)
        return record

    def follow(self, run_id: str, after: int = -1) -> AsyncIterator[StoredEvent]:
        """Every event of a run after index ``after``, from the log, then live, through its end."""
        return follow(self.log, self.hub, run_id, after)

    def is_local(self, run_id: str) -> bool:
        return run_id in self._active
