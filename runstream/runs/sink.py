"""``LogSink``: one run's ``EventSink`` in the run manager. It numbers, serializes and logs.

Each event gets its ``event_index`` here, is serialized once to the JSON text
every transport sends as it is, and goes to the appender (log first, then
fan-out). The run's ``Lifecycle`` decides whether it may still log: nothing
after its end, nothing but ``WorkflowCancelled`` once a cancel was accepted,
nothing at all once it is interrupted. Content chunks (tokens) take a fast
path: the JSON around the content is serialized once per stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from runstream import events as ev
from runstream.engine.serialize import to_jsonable
from runstream.engine.sink import EmitContent
from runstream.errors import LogWriteFailed
from runstream.events import StoredEvent
from runstream.log.base import EventLog, RunEnd, RunRecord, RunStatus, Session
from runstream.runs.appender import Appender
from runstream.runs.lifecycle import Lifecycle, RunState

__all__ = ["END_STATUS", "LogSink"]

logger = logging.getLogger(__name__)

END_STATUS = {
    ev.WORKFLOW_COMPLETED: RunStatus.COMPLETED,
    ev.WORKFLOW_ERROR: RunStatus.ERROR,
    ev.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
    ev.WORKFLOW_PAUSED: RunStatus.PAUSED,
}
"""Events that end a run's task, and the status the log records with each."""

HISTORY_RUNS = 20
"""How many of the session's completed runs ``history`` loads at most."""

_ANNOUNCED = frozenset({ev.WORKFLOW_STARTED, ev.WORKFLOW_RESUMED})


def _members(value: dict[str, Any]) -> str:
    """A JSON object's text without its braces: to splice it into a larger object."""
    return orjson.dumps(value, default=str).decode()[1:-1]


class LogSink:
    """The sink of one run: ``emit``, ``content_emitter`` and ``history`` for its ``RunContext``."""

    __slots__ = ("record", "life", "next_index", "session_state", "_appender", "_log", "_common", "_at_completion")

    def __init__(
        self,
        record: RunRecord,
        life: Lifecycle,
        appender: Appender,
        log: EventLog,
        session_state: dict[str, Any],
        next_index: int = 0,
        at_completion: Callable[[LogSink, dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.record = record
        self.life = life
        self.next_index = next_index
        self.session_state = session_state
        """The run's session state (the same dict its steps change), saved with its end."""
        self._appender = appender
        self._log = log
        self._at_completion = at_completion
        """Called after each completion event is logged (the run manager's step boundaries)."""
        self._common = {
            "run_id": record.run_id,
            "session_id": record.session_id,
            "workflow_id": record.workflow_id,
            "workflow_name": record.workflow_name,
        }

    def _take_index(self, name: str) -> int:
        """The index of the run's next event, once its lifecycle lets it log one."""
        life = self.life
        if life.state is RunState.INTERRUPTED:  # shutting down: the resumed run will redo what is left
            raise asyncio.CancelledError
        if life.state is RunState.CANCELLING and name != ev.WORKFLOW_CANCELLED:
            raise asyncio.CancelledError  # a cancel was accepted: nothing but its end is logged now
        if not life.may_log:
            raise RuntimeError(f"run {self.record.run_id} is {life.state}; {name} not logged")
        if self.record.run_id in self._appender.failed:
            raise LogWriteFailed(f"Run {self.record.run_id} can no longer log its events; {name} not logged")
        index = self.next_index
        self.next_index = index + 1
        return index

    async def emit(self, name: str, fields: dict[str, Any]) -> None:
        status = END_STATUS.get(name)
        end = None
        if status is not None:  # saved first: from its index on, the end goes to the log at once
            await self._save_session()
            end = RunEnd(status, output=fields.get("content"), error=fields.get("error"),
                         pause_expires_at=fields.get("expires_at"))
        index = self._take_index(name)
        now = time.time()
        payload = {"event": name, **self._common, "created_at": int(now), "created_at_ms": int(now * 1000),
                   "event_index": index, **fields}
        event = StoredEvent(index, name, orjson.dumps(payload, default=str).decode())
        if end is not None:
            self.life.end(end.status, end.error)
        appender = self._appender
        appender.add(self.record.run_id, event, end)
        if name in _ANNOUNCED:
            self._announce(name, index)
        # a step that must not run twice starts only once its start is logged: after a crash
        # the log then knows it may have run
        if end is not None or appender.congested or fields.get("rerunnable") is False:
            await appender.durable(self.record.run_id)
        if self._at_completion is not None and name in ev.COMPLETION_EVENTS:
            await self._at_completion(self, fields)

    def content_emitter(self, name: str, fields: dict[str, Any]) -> EmitContent:
        """The same JSON as ``emit`` writes, with all but the time, the index and the content
        serialized once: a chunk then costs one small ``orjson`` call and one format."""
        head = "{" + _members({"event": name, **self._common}) + ',"created_at":'
        middle = _members(fields)
        tail = f",{middle}," if middle else ","
        run_id, appender, take_index, dumps = self.record.run_id, self._appender, self._take_index, orjson.dumps
        clock: Callable[[], float] = time.time

        async def emit_content(content: Any) -> None:
            index = take_index(name)
            now = clock()
            data = (f'{head}{int(now)},"created_at_ms":{int(now * 1000)},"event_index":{index}{tail}'
                    f'"content":{dumps(content, default=str).decode()}}}')
            appender.add(run_id, StoredEvent(index, name, data))
            if appender.congested:
                await appender.durable(run_id)

        return emit_content

    async def history(self) -> list[dict[str, Any]]:
        """The session's last completed runs of this workflow, oldest first (for ``add_history``)."""
        record = self.record
        if record.session_id is None:
            return []
        runs = await self._log.list_runs(
            workflow_id=record.workflow_id, session_id=record.session_id, status=RunStatus.COMPLETED, limit=HISTORY_RUNS
        )
        return [{"input": r.input, "output": r.output} for r in reversed(runs)]

    async def _save_session(self) -> None:
        """Save the session with the run's end; if the log cannot take it, the run stops as
        for any failed write (``LogWriteFailed``) and is resumed, which saves it again."""
        record = self.record
        if record.session_id is None:
            return
        session = Session(record.session_id, record.workflow_id, record.user_id, to_jsonable(self.session_state))
        try:
            await self._log.save_session(session)
        except Exception as exc:
            raise LogWriteFailed(f"Run {record.run_id}: its session could not be saved: {exc}") from exc

    def _announce(self, name: str, index: int) -> None:
        """A line in the server's log when a run starts or resumes (its end is the lifecycle's to log)."""
        run = f"run {self.record.run_id} of {self.record.workflow_id}"
        if name == ev.WORKFLOW_STARTED:
            logger.info("%s started", run)
        else:
            logger.info("%s resumed at event %d", run, index)
