"""``/sessions`` routes in AgentOS's shapes (its ``SessionSchema``, ``WorkflowSessionDetailSchema``
and ``WorkflowRunSchema``), so that its Python client reads them unchanged.

A session is created with its first run and holds the runs that share its id;
every session here is a workflow session. Timestamps are ISO 8601 (UTC), run
statuses upper case, as AgentOS sends them. The response models (``runstream.server.schemas``)
type ``/openapi.json``; ``response_model_exclude_unset`` keeps the JSON as built here, absent
fields left out rather than sent as null.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from runstream import events as ev
from runstream.errors import InvalidRequest, SessionActive, UnknownRun, UnknownSession
from runstream.log.base import SESSION_SORT_KEYS, RunRecord, RunStatus, Session, SessionQuery
from runstream.runs.manager import RunManager
from runstream.runs.pauses import paused_fields
from runstream.server.config import check_db_id
from runstream.server.http_errors import error_responses
from runstream.server.schemas import SessionBody, SessionPage, SessionRun
from runstream.server.auth import Principal
from runstream.server.routes import Caller, agentos_status, authenticate, manager_of

__all__ = ["RUN_STATUSES", "router", "run_dict", "session_dict"]

router = APIRouter(dependencies=[Depends(authenticate)], responses=error_responses(401, 403))

RUN_STATUSES = ("PENDING", "RUNNING", "PAUSED", "COMPLETED", "CANCELLED", "ERROR")
"""The statuses AgentOS clients filter runs by (case-insensitive)."""


class SessionType(str, Enum):
    agent = "agent"
    team = "team"
    workflow = "workflow"


class SortOrder(str, Enum):
    asc = "asc"
    desc = "desc"


class RenameRequest(BaseModel):
    session_name: str = Field(min_length=1)


class DeleteSessionsRequest(BaseModel):
    """AgentOS's ``DeleteSessionRequest``: one type per id."""

    session_ids: list[str] = Field(min_length=1)
    session_types: list[SessionType] = Field(min_length=1)


TypeFilter = Annotated[SessionType | None, Query(alias="type", description="Every session here is a workflow session")]
UserFilter = Annotated[str | None, Query(description="Only a session (or run) of this user")]
DbId = Annotated[str | None, Query(description="The log's id, `runstream` (`GET /config`), or absent")]


def scoped_user(request: Request, principal: Principal, user_id: str | None, write: bool = False) -> tuple[bool, str | None]:
    """The caller's scope check, then (whether it may see nothing, the user to filter on):
    under isolation a user's own sessions only, another's being as missing (docs/security.md)."""
    access = request.app.state.server.access
    access.require_sessions(principal, write)
    nothing, user = access.list_filter(principal, user_id)
    return nothing, user


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def session_dict(session: Session, workflow_name: str | None) -> dict[str, Any]:
    """A session as AgentOS sends it: a list item and a detail at once (null fields dropped)."""
    body = {
        "session_id": session.session_id,
        "session_name": session.session_name or "",
        "session_type": "workflow",
        "user_id": session.user_id,
        "workflow_id": session.workflow_id,
        "workflow_name": workflow_name,
        "session_state": session.state,
        "session_data": {"session_state": session.state},
        "workflow_data": {"name": workflow_name} if workflow_name else None,
        "created_at": iso(session.created_at),
        "updated_at": iso(session.updated_at),
    }
    return {k: v for k, v in body.items() if v is not None}


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else orjson.dumps(value).decode()


async def cancellation_stage(manager: RunManager, run: RunRecord) -> str | None:
    """Where a cancelled run was when it was cancelled, from its ``WorkflowCancelled``
    (``PENDING``, ``PAUSED``; ``EXECUTING`` when the event does not say); None for other runs."""
    if run.status != RunStatus.CANCELLED:
        return None
    last = await manager.log.read(run.run_id, max(run.event_count - 1, 0), 1)
    stage = orjson.loads(last[0].data).get("cancellation_stage") if last else None
    return stage if isinstance(stage, str) else "EXECUTING"


def run_dict(run: RunRecord, metrics: dict[str, Any], stage: str | None = None) -> dict[str, Any]:
    """A run as AgentOS sends it in a session: ``content`` a string or an object (anything
    else as JSON text), ``metrics`` its ``WorkflowMetrics``; plus ``error`` and ``event_count``."""
    content = run.output if isinstance(run.output, dict) else _text(run.output)
    body = {
        "run_id": run.run_id,
        "run_input": _text(run.input),
        "workflow_id": run.workflow_id,
        "workflow_name": run.workflow_name,
        "session_id": run.session_id,
        "user_id": run.user_id,
        "status": agentos_status(run.status),
        "cancellation_stage": stage,
        "content": content,
        "content_type": None if content is None else "str" if isinstance(content, str) else "dict",
        "metrics": metrics,
        "error": run.error,
        "event_count": run.event_count,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
    }
    return {k: v for k, v in body.items() if v is not None}


async def run_metrics(manager: RunManager, run: RunRecord) -> dict[str, Any]:
    """The metrics of a completed run, from its ``WorkflowCompleted`` event; else ``{}``."""
    if run.status != RunStatus.COMPLETED or run.event_count == 0:
        return {}
    last = await manager.log.read(run.run_id, run.event_count - 1, 1)
    if not last or last[0].name != ev.WORKFLOW_COMPLETED:
        return {}
    metrics: dict[str, Any] = orjson.loads(last[0].data).get("metrics") or {}
    return metrics


def _workflow_name(manager: RunManager, workflow_id: str | None) -> str | None:
    workflow = manager.workflows.get(workflow_id) if workflow_id else None
    return workflow.name if workflow else None


async def session_of(
    manager: RunManager, session_id: str, session_type: SessionType | None = None, user_id: str | None = None
) -> Session:
    """The session, unless it is missing, of another type or of another user (all 404)."""
    session = await manager.log.get_session(session_id)
    if session is None or (session_type not in (None, SessionType.workflow)) or (
        user_id is not None and session.user_id != user_id
    ):
        raise UnknownSession(session_id)
    return session


@router.get("/sessions", response_model=SessionPage,
             response_model_exclude_unset=True, responses=error_responses(404, 422))
async def list_sessions(
    request: Request,
    principal: Caller,
    session_type: TypeFilter = None,
    component_id: Annotated[str | None, Query(description="The workflow id")] = None,
    user_id: UserFilter = None,
    session_name: Annotated[str | None, Query(description="Part of the name, in any case")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    page: Annotated[int, Query(ge=1)] = 1,
    sort_by: Annotated[str, Query(description=f"One of {', '.join(SESSION_SORT_KEYS)}")] = "created_at",
    sort_order: SortOrder = SortOrder.desc,
    db_id: DbId = None,
) -> dict[str, Any]:
    """A page of sessions, ``{"data": [...], "meta": {page, limit, total_pages, total_count, search_time_ms}}``."""
    check_db_id(db_id)
    nothing, user_id = scoped_user(request, principal, user_id)
    if sort_by not in SESSION_SORT_KEYS:
        raise InvalidRequest(f"sort_by must be one of {list(SESSION_SORT_KEYS)}, not {sort_by!r}")
    started = time.perf_counter()
    manager = manager_of(request)
    query = SessionQuery(
        workflow_id=component_id, user_id=user_id, session_name=session_name, sort_by=sort_by,
        descending=sort_order == SortOrder.desc, limit=limit, offset=(page - 1) * limit,
    )
    if session_type in (None, SessionType.workflow) and not nothing:
        sessions, total = await manager.log.list_sessions(query), await manager.log.count_sessions(query)
    else:
        sessions, total = [], 0
    return {
        "data": [session_dict(s, _workflow_name(manager, s.workflow_id)) for s in sessions],
        "meta": {
            "page": page, "limit": limit, "total_pages": math.ceil(total / limit), "total_count": total,
            "search_time_ms": round((time.perf_counter() - started) * 1000, 3),
        },
    }


@router.get("/sessions/{session_id}", response_model=SessionBody,
             response_model_exclude_unset=True, responses=error_responses(404, 422))
async def get_session(
    session_id: str, request: Request, principal: Caller, session_type: TypeFilter = None, user_id: UserFilter = None,
    db_id: DbId = None,
) -> dict[str, Any]:
    check_db_id(db_id)
    user_id = _owner(request, principal, user_id, session_id)
    manager = manager_of(request)
    session = await session_of(manager, session_id, session_type, user_id)
    return session_dict(session, _workflow_name(manager, session.workflow_id))


def _owner(request: Request, principal: Principal, user_id: str | None, session_id: str, write: bool = False) -> str | None:
    """The user a one-session route filters on; another user's session is unknown."""
    nothing, user = scoped_user(request, principal, user_id, write)
    if nothing:
        raise UnknownSession(session_id)
    return user


def _statuses(values: list[str] | None) -> set[str] | None:
    if not values:
        return None
    wanted = {v.upper() for v in values}
    if wanted - set(RUN_STATUSES):
        bad = sorted(v for v in values if v.upper() not in RUN_STATUSES)
        raise InvalidRequest(f"Invalid status value(s) {bad}; expected one of {list(RUN_STATUSES)}")
    return wanted


async def _session_runs(manager: RunManager, session_id: str) -> list[RunRecord]:
    """Every run of the session, oldest first, as AgentOS lists them."""
    runs: list[RunRecord] = []
    while True:
        batch = await manager.log.list_runs(session_id=session_id, limit=1000, offset=len(runs))
        runs.extend(batch)
        if len(batch) < 1000:
            return runs[::-1]


@router.get("/sessions/{session_id}/runs", response_model=list[SessionRun],
             response_model_exclude_unset=True, responses=error_responses(404, 422))
async def list_session_runs(
    session_id: str,
    request: Request,
    principal: Caller,
    session_type: TypeFilter = None,
    user_id: UserFilter = None,
    created_after: Annotated[float | None, Query(description="Unix time (s)")] = None,
    created_before: Annotated[float | None, Query(description="Unix time (s)")] = None,
    status: Annotated[list[str] | None, Query(description=f"Any of {', '.join(RUN_STATUSES)}, in any case")] = None,
    db_id: DbId = None,
) -> list[dict[str, Any]]:
    """The session's runs, oldest first; each ``metrics`` is the run's ``WorkflowMetrics``
    (``{}`` until it completes). Its events are at ``/workflows/{id}/runs/{run_id}/events``."""
    check_db_id(db_id)
    user_id = _owner(request, principal, user_id, session_id)
    wanted = _statuses(status)
    manager = manager_of(request)
    await session_of(manager, session_id, session_type, user_id)
    runs = [
        r for r in await _session_runs(manager, session_id)
        if (wanted is None or agentos_status(r.status) in wanted)
        and (created_after is None or r.created_at >= created_after)
        and (created_before is None or r.created_at <= created_before)
        and (user_id is None or r.user_id == user_id)
    ]
    return [await session_run(manager, r) for r in runs]


async def session_run(manager: RunManager, run: RunRecord) -> dict[str, Any]:
    """``run_dict`` with what only the run's last event says: its metrics, where it was
    cancelled, and, while it is paused, what it waits on (``paused_fields``)."""
    body = run_dict(run, await run_metrics(manager, run), await cancellation_stage(manager, run))
    return {**body, **await paused_fields(manager.log, run)}




@router.get("/sessions/{session_id}/runs/{run_id}", response_model=SessionRun,
             response_model_exclude_unset=True, responses=error_responses(404, 422))
async def get_session_run(
    session_id: str, run_id: str, request: Request, principal: Caller, session_type: TypeFilter = None,
    user_id: UserFilter = None, db_id: DbId = None,
) -> dict[str, Any]:
    check_db_id(db_id)
    user_id = _owner(request, principal, user_id, session_id)
    manager = manager_of(request)
    await session_of(manager, session_id, session_type, user_id)
    run = await manager.log.get_run(run_id)
    if run is None or run.session_id != session_id or not request.app.state.server.access.may_read(principal, run):
        raise UnknownRun(run_id)
    return await session_run(manager, run)


@router.post("/sessions/{session_id}/rename", response_model=SessionBody,
             response_model_exclude_unset=True, responses=error_responses(404, 422))
async def rename_session(
    session_id: str, body: RenameRequest, request: Request, principal: Caller, session_type: TypeFilter = None,
    user_id: UserFilter = None, db_id: DbId = None,
) -> dict[str, Any]:
    """Rename the session (JSON ``{"session_name"}``); answers the renamed session."""
    check_db_id(db_id)
    user_id = _owner(request, principal, user_id, session_id, write=True)
    manager = manager_of(request)
    await session_of(manager, session_id, session_type, user_id)
    if not await manager.log.rename_session(session_id, body.session_name):
        raise UnknownSession(session_id)
    return await get_session(session_id, request, principal, user_id=user_id)


async def _delete(manager: RunManager, session_ids: list[str]) -> None:
    busy = await manager.log.delete_sessions(session_ids)
    if busy:
        raise SessionActive(busy)


@router.delete("/sessions/{session_id}", status_code=204, responses=error_responses(404, 409, 422))
async def delete_session(
    session_id: str, request: Request, principal: Caller, user_id: UserFilter = None, db_id: DbId = None
) -> Response:
    """Delete the session with its runs and their events (409 while one of them runs)."""
    check_db_id(db_id)
    user_id = _owner(request, principal, user_id, session_id, write=True)
    manager = manager_of(request)
    await session_of(manager, session_id, None, user_id)
    await _delete(manager, [session_id])
    return Response(status_code=204)


@router.delete("/sessions", status_code=204, responses=error_responses(404, 409, 422))
async def delete_sessions(
    body: DeleteSessionsRequest, request: Request, principal: Caller, user_id: UserFilter = None, db_id: DbId = None
) -> Response:
    """Delete several sessions (JSON ``{"session_ids", "session_types"}``), all or none:
    404 if one is unknown, 409 if one has a running run."""
    check_db_id(db_id)
    if len(body.session_ids) != len(body.session_types):
        raise InvalidRequest("Session IDs and session types must have the same length")
    nothing, user_id = scoped_user(request, principal, user_id, write=True)
    if nothing:
        raise UnknownSession(", ".join(body.session_ids))
    manager = manager_of(request)
    missing = []
    for session_id, session_type in zip(body.session_ids, body.session_types):
        session = await manager.log.get_session(session_id)
        if session is None or session_type != SessionType.workflow or (user_id is not None and session.user_id != user_id):
            missing.append(session_id)
    if missing:
        raise UnknownSession(", ".join(missing))
    await _delete(manager, body.session_ids)
    return Response(status_code=204)
