"""A paused run, read from its log: the requirement it waits on, and the event a continue logs.

A paused run is only rows: its status (``paused``, with ``pause_expires_at`` when the
pause has a timeout) and its log, which ends with ``WorkflowPaused``. That event holds
the requirement, so the server checks a continue against its own copy, on any replica,
after any restart.
"""

from __future__ import annotations

from typing import Any

import orjson

from runstream import events as ev
from runstream.engine.hitl import PauseKind, Resolution, StepRequirement
from runstream.errors import RunNotPaused
from runstream.log.base import EventLog, RunRecord, RunStatus

__all__ = ["continued_event", "paused_event", "paused_fields", "paused_requirement"]


async def paused_event(log: EventLog, run: RunRecord) -> tuple[int, dict[str, Any]]:
    """The index and fields of the ``WorkflowPaused`` the run's log ends with."""
    last = await log.read(run.run_id, max(run.event_count - 1, 0), 1)
    if not last or last[0].name != ev.WORKFLOW_PAUSED:
        raise RunNotPaused(f"Run {run.run_id} is not paused (status={run.status})")
    return last[0].index, orjson.loads(last[0].data)


async def paused_requirement(log: EventLog, run: RunRecord) -> tuple[int, StepRequirement]:
    """The index of the run's ``WorkflowPaused`` and the requirement it waits on (the last
    of ``step_requirements``; the earlier ones are answered pauses)."""
    index, data = await paused_event(log, run)
    return index, StepRequirement.from_dict(data["step_requirements"][-1])


_PAUSED_KEYS = ("step_requirements", "error_requirements", "pause_kind", "paused_step_name", "paused_step_index")


async def paused_fields(log: EventLog, run: RunRecord) -> dict[str, Any]:
    """What a paused run's dict has of its ``WorkflowPaused``, as AgentOS's run dict has it:
    ``step_requirements`` (the answered pauses, then the active one, last), ``pause_kind``,
    ``paused_step_name``, ``paused_step_index`` (and ``error_requirements``); ``{}`` for a
    run that is not paused."""
    if run.status != RunStatus.PAUSED:
        return {}
    try:
        _, paused = await paused_event(log, run)
    except RunNotPaused:  # continued since it was read
        return {}
    return {key: paused[key] for key in _PAUSED_KEYS if key in paused}


def continued_event(req: StepRequirement, resolution: Resolution) -> tuple[str, dict[str, Any]]:
    """``StepContinued`` (``StepExecutorContinued`` for an agent's tool calls): the first event after a continue, and the answer's durable record
    (a resumed or continued run replays it from the log)."""
    fields: dict[str, Any] = {
        "step_name": req.step_name,
        "step_index": req.step_index,
        "step_id": req.step_id,
        "step_path": req.step_path,
        "requirement_id": req.requirement_id,
        "kind": req.kind,
        "timed_out": resolution.timed_out,
        "resolution": resolution.to_dict(),
    }
    if req.kind == PauseKind.EXECUTOR:
        fields.update(executor_name=req.executor_name, executor_type=req.executor_type, executor_id=req.executor_id)
        return ev.STEP_EXECUTOR_CONTINUED, fields
    return ev.STEP_CONTINUED, fields
