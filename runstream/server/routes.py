"""HTTP routes (docs/protocol.md, "HTTP and SSE"; docs/http.md): AgentOS's paths and form fields, plus
``/runs``; ``/sessions`` and ``/config`` are in ``sessions.py`` and ``config.py``.

Every SSE stream reads through ``manager.follow`` (the one read path) and ends
after the run's terminal event. Errors are ``{"detail", "code"}`` (``http_errors``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Form, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from runstream.events import WORKFLOW_COMPLETED, StoredEvent
from runstream.log.base import RunRecord, RunStatus
from runstream.runs.manager import RunManager
from runstream.runs.pauses import paused_fields
from runstream.server.auth import Principal
from runstream.server.gate import Gate
from runstream.errors import InvalidContinue, InvalidRequest
from runstream.server.http_errors import error_responses
from runstream.server.limits import check_depth
from runstream.server.schemas import Cancelled, RunBody, WorkflowSummary
from runstream.server.sse import follow_after, sse_response

__all__ = ["RunRequest", "router"]

_bearer = HTTPBearer(auto_error=False, description="The security key or a JWT, when the server has authentication")


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller of every route but ``/health``, ``/ready`` and the docs: ``Authorization: Bearer <token>``."""
    server = request.app.state.server
    principal: Principal = await server.authenticator.authenticate(credentials.credentials if credentials else None)
    return principal


Caller = Annotated[Principal, Depends(authenticate)]


router = APIRouter()
_Body = TypeVar("_Body", bound=BaseModel)

api = APIRouter(dependencies=[Depends(authenticate)], responses=error_responses(401, 403))
stream_api = APIRouter(responses=error_responses(401, 403))

MAX_OFFSET = 2**31 - 1
"""Past this an offset would only overflow the database's integers."""

_SSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}}, "description": "SSE: `id: <event_index>`, `event: <name>`, `data: <json>`"},
        204: {"description": "A finished run has no event after `last_event_index`"}}


_STARTED: dict[int | str, dict[str, Any]] = {
    200: {"model": RunBody, "content": {"text/event-stream": {}},
          "description": "`stream` (default): SSE of the run's events. Neither `stream` nor `background`: "
                         "the finished run, as JSON"},
    202: {"model": RunBody, "description": "With `background`: the run, at once"},
}


class RunRequest(BaseModel):
    """The fields of ``POST /workflows/{id}/runs``, as a form or as JSON."""

    message: Any
    stream: bool = True
    background: bool = False
    session_id: str | None = None
    user_id: str | None = None


_RUN_BODY = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": RunRequest.model_json_schema()},
    "application/json": {"schema": RunRequest.model_json_schema()},
}}}


def gate_of(request: Request) -> Gate:
    gate: Gate = request.app.state.server.gate
    return gate


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def manager_of(request: Request) -> RunManager:
    manager: RunManager = request.app.state.server.manager
    return manager


def heartbeat_of(request: Request) -> float:
    heartbeat: float = request.app.state.server.sse_heartbeat
    return heartbeat


async def read_body(request: Request, model: type[_Body]) -> _Body:
    """A form (AgentOS clients) or a JSON object, validated the same way."""
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            data: Any = orjson.loads(await request.body())
            check_depth(data)
        else:
            data = dict(await request.form())
        return model.model_validate(data)
    except orjson.JSONDecodeError:
        raise InvalidRequest("Body is not valid JSON") from None
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def run_of(request: Request, principal: Principal, workflow_id: str, run_id: str) -> RunRecord:
    """The run ``run_id`` of workflow ``workflow_id``, if the caller may read it; else 404,
    the same for a run that does not exist, is another user's or is of another workflow."""
    manager_of(request).workflow(workflow_id)
    return await gate_of(request).run(principal, run_id, workflow_id)


def stream_of(
    request: Request, principal: Principal, run_id: str, after: int | None, counted: bool = False, leg: bool = False
) -> Response:
    """The run's SSE, counted against the client's connections (``counted``: already), ending
    when the caller's token expires."""
    connections = request.app.state.server.client_connections
    client = client_of(request)
    if after is not None and not counted:
        connections.acquire(client)
    elif after is None and counted:
        connections.release(client)
    return sse_response(manager_of(request), run_id, after, heartbeat_of(request), principal.expires_at,
                        (lambda: connections.release(client)) if after is not None else None, leg)


def run_body(run: RunRecord) -> dict[str, Any]:
    """A run as JSON; ``content`` repeats ``output`` as AgentOS names it."""
    return {**run.as_dict(), "content": run.output}


def agentos_status(status: str) -> str:
    """A run's status as AgentOS names it: ``COMPLETED``..., and ``PENDING`` for ``queued``."""
    return "PENDING" if status == RunStatus.QUEUED else status.upper()


def stored_status(status: str | None) -> str | None:
    """A status filter in either spelling (``completed`` or AgentOS's ``COMPLETED``, ``PENDING``)."""
    if status is None:
        return None
    return RunStatus.QUEUED if status.upper() == "PENDING" else status.lower()


def agentos_run_body(run: RunRecord) -> dict[str, Any]:
    """``run_body`` with AgentOS's status: the answer of the run routes AgentOS also has, so that
    its client's checks hold (``run.status == RunStatus.completed``, ``run.is_paused``)."""
    return {**run_body(run), "status": agentos_status(run.status)}


async def full_run_body(manager: RunManager, run: RunRecord, agentos: bool = False) -> dict[str, Any]:
    """``run_body`` (``agentos_run_body`` with ``agentos``), and for a paused run what it waits on,
    as AgentOS's run dict has it (``step_requirements``, ``pause_kind``, ``paused_step_name``,
    ``paused_step_index``)."""
    body = agentos_run_body(run) if agentos else run_body(run)
    return {**body, **await paused_fields(manager.log, run)}


async def until_leg_end(manager: RunManager, run_id: str, after: int = -1) -> StoredEvent | None:
    """Wait until the run ends or pauses (after index ``after``); that last event."""
    async for event in manager.follow(run_id, after):
        if event.ends_leg:
            return event
    return None


@api.get("/workflows", response_model=list[WorkflowSummary])
async def list_workflows(request: Request, principal: Caller) -> list[dict[str, Any]]:
    """Every workflow served that the caller may read, with its steps and input schema."""
    access = gate_of(request).access
    return [w.describe() for w in manager_of(request).workflows.values() if access.allowed(principal, "read", w.id)]


@api.get("/workflows/{workflow_id}", response_model=WorkflowSummary, responses=error_responses(404))
async def get_workflow(workflow_id: str, request: Request, principal: Caller) -> dict[str, Any]:
    workflow = manager_of(request).workflow(workflow_id)
    gate_of(request).access.require(principal, "read", workflow_id)
    return workflow.describe()


@api.post("/workflows/{workflow_id}/runs", responses={**_SSE, **_STARTED, **error_responses(404, 422, 503)},
          openapi_extra=_RUN_BODY)
async def start_run(workflow_id: str, request: Request, principal: Caller) -> Response:
    """Start a run. ``stream`` (default): SSE of its events. ``background``: 202 with the run
    at once. Neither: wait for the end and answer with the run, its output and its metrics."""
    fields = await read_body(request, RunRequest)
    manager = manager_of(request)
    streams = fields.stream and not fields.background
    connections, client = request.app.state.server.client_connections, client_of(request)
    if streams:  # counted before the run starts: a refused stream starts no run
        connections.acquire(client)
    try:
        run = await gate_of(request).start_run(
            principal, client, workflow_id, fields.message, fields.session_id, fields.user_id
        )
    except BaseException:
        if streams:
            connections.release(client)
        raise
    if fields.background:
        return JSONResponse(run_body(run), status_code=202)
    if streams:
        return stream_of(request, principal, run.run_id, -1, counted=True, leg=True)
    return JSONResponse(await leg_body(manager, run.run_id))


async def leg_body(manager: RunManager, run_id: str, after: int = -1) -> dict[str, Any]:
    """The run once it ends or pauses: its body with AgentOS's status (AgentOS clients read
    ``metrics``, and ``status`` for ``is_paused``)."""
    last = await until_leg_end(manager, run_id, after)
    body = await full_run_body(manager, await manager.get_run(run_id), agentos=True)
    if last is not None and last.name == WORKFLOW_COMPLETED:  # AgentOS clients read its WorkflowMetrics
        body["metrics"] = orjson.loads(last.data).get("metrics")
    return body


class ContinueRequest(BaseModel):
    """The fields of ``POST /workflows/{id}/runs/{run_id}/continue``, as a form (AgentOS:
    ``step_requirements`` is a JSON string, ``""`` for none) or as JSON."""

    step_requirements: Any = None
    error_requirements: Any = None
    session_id: str | None = None
    user_id: str | None = None
    stream: bool = True
    background: bool = False


_CONTINUE_BODY = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": ContinueRequest.model_json_schema()},
    "application/json": {"schema": ContinueRequest.model_json_schema()},
}}}


def _json_field(name: str, value: Any) -> Any:
    """A form's JSON-string field, parsed (``""`` is none)."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidContinue(f"Invalid JSON in {name} field") from None
    check_depth(parsed)
    return parsed


async def read_continue_request(request: Request) -> ContinueRequest:
    fields = await read_body(request, ContinueRequest)
    fields.step_requirements = _json_field("step_requirements", fields.step_requirements)
    fields.error_requirements = _json_field("error_requirements", fields.error_requirements)
    return fields


@api.post(
    "/workflows/{workflow_id}/runs/{run_id}/continue",
    responses={**_SSE, **error_responses(400, 404, 409, 422)},
    openapi_extra=_CONTINUE_BODY,
)
async def continue_run(workflow_id: str, run_id: str, request: Request, principal: Caller) -> Response:
    """Answer a paused run. 400 when the answer does not fit its stored requirement, 409 when
    it is not paused (finished, running, or another continue answered first). ``stream``
    (default): SSE of the events from the continue through the run's end or next pause;
    ``background``: 202 at once; neither: the run once it ends or pauses again."""
    fields = await read_continue_request(request)
    manager = manager_of(request)
    manager.workflow(workflow_id)
    run = await gate_of(request).steerable_run(principal, run_id, workflow_id)
    index = await manager.continue_run(run.run_id, fields.step_requirements, fields.error_requirements)
    if fields.background:
        return JSONResponse({"run_id": run_id, "session_id": run.session_id, "status": RunStatus.RUNNING}, status_code=202)
    if fields.stream:
        return stream_of(request, principal, run_id, index, leg=True)
    return JSONResponse(await leg_body(manager, run_id, index))


@api.post("/workflows/{workflow_id}/runs/{run_id}/resume", responses={**_SSE, **error_responses(404, 422)})
async def resume_run(
    workflow_id: str,
    run_id: str,
    request: Request,
    principal: Caller,
    last_event_index: Annotated[int | None, Form()] = None,
    session_id: Annotated[str | None, Form()] = None,
) -> Response:
    """SSE of the events after ``last_event_index`` (all when absent), then live, for running
    and finished runs alike. ``session_id`` is accepted because AgentOS clients send it."""
    manager = manager_of(request)
    run = await run_of(request, principal, workflow_id, run_id)
    after = follow_after(run, last_event_index, await manager.log.next_index(run_id))
    return stream_of(request, principal, run_id, after)


async def stream_caller(
    request: Request,
    run_id: str,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Query(description="A stream token of this run (POST .../stream-token), "
                                             "for EventSource, which cannot send headers")] = None,
) -> Principal:
    """The caller of a run's SSE: a bearer token, or ``?token=`` holding a stream token for this
    run only (never the security key or a user's JWT: a URL ends up in logs)."""
    server = request.app.state.server
    if token is not None and credentials is None:
        principal: Principal = server.authenticator.authenticate_stream(token, run_id)
        return principal
    return await authenticate(request, credentials)


@stream_api.get("/workflows/{workflow_id}/runs/{run_id}/events", responses={**_SSE, **error_responses(401, 404, 422)})
async def run_events(
    workflow_id: str,
    run_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(stream_caller)],
    last_event_id_header: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[int | None, Query(description="Used when there is no Last-Event-ID header")] = None,
) -> Response:
    """SSE for ``EventSource``: each event has ``id: <event_index>``; a reconnect's ``Last-Event-ID``
    header resumes after it. 204 once a finished run has nothing more. The stream ends when the
    caller's token expires; resume with ``Last-Event-ID`` and a fresh token."""
    manager = manager_of(request)
    run = await run_of(request, principal, workflow_id, run_id)
    last = last_event_id_header if last_event_id_header is not None else last_event_id
    after = follow_after(run, last, await manager.log.next_index(run_id))
    return stream_of(request, principal, run_id, after)


@api.post("/workflows/{workflow_id}/runs/{run_id}/stream-token", responses=error_responses(404))
async def workflow_run_stream_token(workflow_id: str, run_id: str, request: Request, principal: Caller) -> dict[str, Any]:
    """A short-lived token to follow this run's SSE as ``?token=`` (for ``EventSource``)."""
    run = await run_of(request, principal, workflow_id, run_id)
    return stream_token_body(request, principal, run)


@api.post("/runs/{run_id}/stream-token", responses=error_responses(404))
async def run_stream_token(run_id: str, request: Request, principal: Caller) -> dict[str, Any]:
    """``POST /workflows/{workflow_id}/runs/{run_id}/stream-token`` for clients that know no workflow id."""
    run = await gate_of(request).run(principal, run_id)
    return stream_token_body(request, principal, run)


def stream_token_body(request: Request, principal: Principal, run: RunRecord) -> dict[str, Any]:
    token, expires_at = request.app.state.server.authenticator.stream_tokens.mint(principal, run.run_id)
    url = f"/workflows/{quote(run.workflow_id)}/runs/{quote(run.run_id)}/events?token={token}"
    return {"token": token, "run_id": run.run_id, "workflow_id": run.workflow_id, "expires_at": expires_at,
            "events_url": url}


@api.post("/workflows/{workflow_id}/runs/{run_id}/cancel", response_model=Cancelled, responses=error_responses(404, 409))
async def cancel_run(workflow_id: str, run_id: str, request: Request, principal: Caller) -> dict[str, Any]:
    """Cancel a run; it ends with one ``WorkflowCancelled``. A repeated cancel while it is
    under way answers the same, with ``already_requested``. 409 once it has ended."""
    manager_of(request).workflow(workflow_id)
    outcome = await gate_of(request).cancel(principal, run_id, workflow_id)
    return {"run_id": run_id, "cancelled": True, "status": outcome.status, "already_requested": outcome.already_requested}


Filter = Annotated[str | None, Query(max_length=256)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


async def listed_runs(
    request: Request, principal: Principal, workflow_id: str | None, status: str | None, session_id: str | None,
    user_id: str | None, limit: int, offset: int, run_id_prefix: str | None = None,
    body: Callable[[RunRecord], dict[str, Any]] = run_body,
) -> list[dict[str, Any]]:
    """Runs the caller may see, newest first: under isolation, its own only."""
    access = gate_of(request).access
    access.require(principal, "read", workflow_id)
    nothing, user_id = access.list_filter(principal, user_id)
    if nothing:
        return []
    runs = await manager_of(request).log.list_runs(
        workflow_id, stored_status(status), session_id, user_id, limit, offset, run_id_prefix=run_id_prefix
    )
    return [body(r) for r in runs]


@api.get("/workflows/{workflow_id}/runs", response_model=list[RunBody], responses=error_responses(404, 422))
async def list_workflow_runs(
    workflow_id: str, request: Request, principal: Caller, status: Filter = None, session_id: Filter = None,
    user_id: Filter = None, limit: Limit = 50, offset: Offset = 0,
) -> list[dict[str, Any]]:
    """The workflow's runs, newest first, with AgentOS's statuses (``COMPLETED``...)."""
    manager_of(request).workflow(workflow_id)
    return await listed_runs(request, principal, workflow_id, status, session_id, user_id, limit, offset,
                             body=agentos_run_body)


@api.get("/workflows/{workflow_id}/runs/{run_id}", response_model=RunBody, responses=error_responses(404))
async def get_workflow_run(workflow_id: str, run_id: str, request: Request, principal: Caller) -> dict[str, Any]:
    """The run, with AgentOS's status (``COMPLETED``...)."""
    return await full_run_body(manager_of(request), await run_of(request, principal, workflow_id, run_id), agentos=True)


@api.get("/runs", response_model=list[RunBody], responses=error_responses(422))
async def list_runs(
    request: Request, principal: Caller, workflow_id: Filter = None, status: Filter = None,
    session_id: Filter = None, user_id: Filter = None, limit: Limit = 50, offset: Offset = 0,
    run_id_prefix: Annotated[str | None, Query(min_length=1, description="Runs whose id starts with it")] = None,
) -> list[dict[str, Any]]:
    """Runs of every workflow (not in AgentOS): what ``runstream runs`` shows; ``run_id_prefix``
    finds the run a short id names (``runstream attach de82bac8``)."""
    return await listed_runs(request, principal, workflow_id, status, session_id, user_id, limit, offset,
                             run_id_prefix)


@api.get("/runs/{run_id}", response_model=RunBody, responses=error_responses(404))
async def get_run(run_id: str, request: Request, principal: Caller) -> dict[str, Any]:
    """A run by id alone (not in AgentOS), for clients that know no workflow id."""
    return await full_run_body(manager_of(request), await gate_of(request).run(principal, run_id))


router.include_router(api)
router.include_router(stream_api)
