"""HTTP routes (docs/protocol.md, "HTTP and SSE"; docs/http.md): AgentOS's paths and form fields, plus
``/runs``; ``/sessions`` and ``/config`` are in ``sessions.py`` and ``config.py``.

Every SSE stream reads through ``manager.follow`` (the one read path) and ends
after the run's terminal event. Errors are ``{"detail", "code"}`` (``http_errors``).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Form, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from runstream.errors import InvalidRequest, Unauthorized, UnknownRun
from runstream.events import WORKFLOW_COMPLETED
from runstream.log.base import RunRecord
from runstream.runs.manager import RunManager
from runstream.server.http_errors import error_responses
from runstream.server.sse import plan_resume, sse_response

__all__ = ["RunRequest", "router"]

_bearer = HTTPBearer(auto_error=False, description="The server's security key, when it has one")


async def require_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """With ``Server.security_key`` set, every route but ``/health`` needs ``Authorization: Bearer <key>``."""
    key: str | None = request.app.state.server.security_key
    if key is None:
        return
    if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), key.encode()):
        raise Unauthorized("Missing or invalid bearer token")


router = APIRouter()
api = APIRouter(dependencies=[Depends(require_key)], responses=error_responses(401))

_SSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}}, "description": "SSE: `id: <event_index>`, `event: <name>`, `data: <json>`"},
        204: {"description": "A finished run has no event after `last_event_index`"}}


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


def manager_of(request: Request) -> RunManager:
    manager: RunManager = request.app.state.server.manager
    return manager


def heartbeat_of(request: Request) -> float:
    heartbeat: float = request.app.state.server.sse_heartbeat
    return heartbeat


async def read_run_request(request: Request) -> RunRequest:
    """A form (AgentOS clients) or a JSON object, validated the same way."""
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            data: Any = orjson.loads(await request.body())
        else:
            data = dict(await request.form())
        return RunRequest.model_validate(data)
    except orjson.JSONDecodeError:
        raise InvalidRequest("Body is not valid JSON") from None
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def run_of(manager: RunManager, workflow_id: str, run_id: str) -> RunRecord:
    """The run ``run_id`` of workflow ``workflow_id``; unknown workflow or run raise (404)."""
    manager.workflow(workflow_id)
    run = await manager.get_run(run_id)
    if run.workflow_id != workflow_id:
        raise UnknownRun(run_id)
    return run


def run_body(run: RunRecord) -> dict[str, Any]:
    """A run as JSON; ``content`` repeats ``output`` as AgentOS names it."""
    return {**run.as_dict(), "content": run.output}


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@api.get("/workflows")
async def list_workflows(request: Request) -> list[dict[str, Any]]:
    """Every workflow served, with its steps and input schema."""
    return [w.describe() for w in manager_of(request).workflows.values()]


@api.get("/workflows/{workflow_id}", responses=error_responses(404))
async def get_workflow(workflow_id: str, request: Request) -> dict[str, Any]:
    return manager_of(request).workflow(workflow_id).describe()


@api.post("/workflows/{workflow_id}/runs", responses={**_SSE, **error_responses(404, 422, 503)}, openapi_extra=_RUN_BODY)
async def start_run(workflow_id: str, request: Request) -> Response:
    """Start a run. ``stream`` (default): SSE of its events. ``background``: 202 with the run
    at once. Neither: wait for the end and answer with the run, its output and its metrics."""
    fields = await read_run_request(request)
    manager = manager_of(request)
    run = await manager.start_run(workflow_id, fields.message, fields.session_id, fields.user_id)
    if fields.background:
        return JSONResponse(run_body(run), status_code=202)
    if fields.stream:
        return sse_response(manager, run.run_id, -1, heartbeat_of(request))
    last = None
    async for last in manager.follow(run.run_id):
        pass
    body = run_body(await manager.get_run(run.run_id))
    if last is not None and last.name == WORKFLOW_COMPLETED:  # AgentOS clients read its WorkflowMetrics
        body["metrics"] = orjson.loads(last.data).get("metrics")
    return JSONResponse(body)


@api.post("/workflows/{workflow_id}/runs/{run_id}/resume", responses={**_SSE, **error_responses(404, 422)})
async def resume_run(
    workflow_id: str,
    run_id: str,
    request: Request,
    last_event_index: Annotated[int | None, Form()] = None,
    session_id: Annotated[str | None, Form()] = None,
) -> Response:
    """SSE of the events after ``last_event_index`` (all when absent), then live, for running
    and finished runs alike. ``session_id`` is accepted because AgentOS clients send it."""
    manager = manager_of(request)
    run = await run_of(manager, workflow_id, run_id)
    after = plan_resume(run, last_event_index, await manager.log.next_index(run_id))
    return sse_response(manager, run_id, after, heartbeat_of(request))


@api.get("/workflows/{workflow_id}/runs/{run_id}/events", responses={**_SSE, **error_responses(404, 422)})
async def run_events(
    workflow_id: str,
    run_id: str,
    request: Request,
    last_event_id_header: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[int | None, Query(description="Used when there is no Last-Event-ID header")] = None,
) -> Response:
    """SSE for ``EventSource``: each event has ``id: <event_index>``; a reconnect's ``Last-Event-ID``
    header resumes after it. 204 once a finished run has nothing more."""
    manager = manager_of(request)
    run = await run_of(manager, workflow_id, run_id)
    last = last_event_id_header if last_event_id_header is not None else last_event_id
    after = plan_resume(run, last, await manager.log.next_index(run_id))
    return sse_response(manager, run_id, after, heartbeat_of(request))


@api.post("/workflows/{workflow_id}/runs/{run_id}/cancel", responses=error_responses(404, 409))
async def cancel_run(workflow_id: str, run_id: str, request: Request) -> dict[str, Any]:
    """Cancel a run; it ends with one ``WorkflowCancelled``. A repeated cancel while it is
    under way answers the same, with ``already_requested``. 409 once it has ended."""
    manager = manager_of(request)
    await run_of(manager, workflow_id, run_id)
    outcome = await manager.cancel(run_id)
    return {"run_id": run_id, "cancelled": True, "status": outcome.status, "already_requested": outcome.already_requested}


Filter = Annotated[str | None, Query()]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


@api.get("/workflows/{workflow_id}/runs", responses=error_responses(404, 422))
async def list_workflow_runs(
    workflow_id: str, request: Request, status: Filter = None, session_id: Filter = None,
    user_id: Filter = None, limit: Limit = 50, offset: Offset = 0,
) -> list[dict[str, Any]]:
    """The workflow's runs, newest first."""
    manager = manager_of(request)
    manager.workflow(workflow_id)
    runs = await manager.log.list_runs(workflow_id, status, session_id, user_id, limit, offset)
    return [run_body(r) for r in runs]


@api.get("/workflows/{workflow_id}/runs/{run_id}", responses=error_responses(404))
async def get_workflow_run(workflow_id: str, run_id: str, request: Request) -> dict[str, Any]:
    return run_body(await run_of(manager_of(request), workflow_id, run_id))


@api.get("/runs", responses=error_responses(422))
async def list_runs(
    request: Request, workflow_id: Filter = None, status: Filter = None, session_id: Filter = None,
    user_id: Filter = None, limit: Limit = 50, offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Runs of every workflow (not in AgentOS): what ``runstream runs`` shows."""
    runs = await manager_of(request).log.list_runs(workflow_id, status, session_id, user_id, limit, offset)
    return [run_body(r) for r in runs]


@api.get("/runs/{run_id}", responses=error_responses(404))
async def get_run(run_id: str, request: Request) -> dict[str, Any]:
    """A run by id alone (not in AgentOS), for clients that know no workflow id."""
    return run_body(await manager_of(request).get_run(run_id))


router.include_router(api)
