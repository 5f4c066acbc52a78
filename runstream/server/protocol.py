"""The WebSocket protocol's logic, without I/O: parse client actions, plan reconnects.

Everything here is pure: text in, typed actions or control messages out. The
socket adapter (``server/websocket.py``) only moves frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, ValidationError

from runstream.errors import InvalidRequest, ProtocolError, RunstreamError
from runstream.log.base import RunRecord
from runstream.server.limits import check_depth

__all__ = [
    "Action",
    "Authenticate",
    "Ping",
    "StartWorkflow",
    "Reconnect",
    "CancelWorkflow",
    "ContinueWorkflow",
    "parse_action",
    "ReconnectPlan",
    "plan_reconnect",
    "control",
    "error_frame",
]


class _Action(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Authenticate(_Action):
    action: Literal["authenticate"]
    token: str


class Ping(_Action):
    action: Literal["ping"]


class StartWorkflow(_Action):
    action: Literal["start-workflow"]
    workflow_id: str
    message: Any = None
    session_id: str | None = None
    user_id: str | None = None
    additional_data: dict[str, Any] | None = None


class Reconnect(_Action):
    action: Literal["reconnect"]
    run_id: str
    last_event_index: StrictInt | None = None
    workflow_id: str | None = None
    session_id: str | None = None


class CancelWorkflow(_Action):
    action: Literal["cancel-workflow"]
    run_id: str


class ContinueWorkflow(_Action):
    """Answer a paused run (AgentOS's action): ``step_requirements`` as received, with the
    answer fields filled in, or ``error_requirements`` with a ``decision`` (runstream)."""

    action: Literal["continue-workflow"]
    run_id: str
    workflow_id: str | None = None
    session_id: str | None = None
    step_requirements: Any = None
    error_requirements: Any = None


Action = Authenticate | Ping | StartWorkflow | Reconnect | CancelWorkflow | ContinueWorkflow
_ACTIONS = TypeAdapter(Annotated[Action, Field(discriminator="action")])
_NAMES = ("authenticate", "ping", "start-workflow", "reconnect", "cancel-workflow", "continue-workflow")


def parse_action(text: str) -> Action:
    """A client frame as a typed action, or ``ProtocolError`` saying what is wrong."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError("Invalid JSON message") from None
    check_depth(value)
    if not isinstance(value, dict):
        raise ProtocolError(f"Message must be a JSON object, got {type(value).__name__}")
    name = value.get("action")
    if name is None:
        raise ProtocolError("Message has no 'action' field")
    if name not in _NAMES:
        raise ProtocolError(f"Unknown action: {name!r} (expected one of {', '.join(_NAMES)})")
    try:
        return _ACTIONS.validate_python(value)
    except ValidationError as exc:
        raise ProtocolError(f"Invalid '{name}' message: {_explain(exc)}") from None


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"][1:]) or "message"
        what = "is required" if error["type"] == "missing" else error["msg"].lower()
        problems.append(f"field '{where}' {what}")
    return "; ".join(problems)


def control(event: str, **fields: Any) -> str:
    """A control message: a plain JSON object (not SSE-framed)."""
    return orjson.dumps({"event": event, **fields}).decode()


def error_frame(exc: RunstreamError, event: str = "error") -> str:
    """An ``error`` (or ``auth_error``) frame: ``error`` is the text AgentOS clients show,
    ``code`` the stable code programs branch on, the same as over HTTP."""
    return control(event, error=str(exc), code=exc.code)


@dataclass(frozen=True)
class ReconnectPlan:
    """What to send a client that reconnects: the notice first, then events after
    ``after``; ``subscribed`` goes out once the event at ``subscribe_after`` is sent
    (at once when it is ``after``)."""

    notice: str
    after: int
    subscribe_after: int | None = None
    subscribed: str | None = None


def plan_reconnect(run: RunRecord, last_event_index: int | None, current_count: int) -> ReconnectPlan:
    """The AgentOS reconnect contract, for a run whose log holds ``current_count`` events."""
    if run.finished:
        return ReconnectPlan(
            notice=control(
                "replay",
                run_id=run.run_id,
                status=run.status,
                total_events=current_count,
                message=(
                    f"Run has finished ({run.status}); replaying all {current_count} events"
                    if current_count
                    else f"Run has finished ({run.status}); its events were deleted by the retention "
                    "policy, only its final output is kept"
                ),
            ),
            after=-1,
        )
    last = -1 if last_event_index is None else last_event_index
    if last < -1 or last >= current_count:
        raise InvalidRequest(
            f"last_event_index {last_event_index} is out of range: run {run.run_id} has "
            f"{current_count} events (use null or -1 for all, or 0..{current_count - 1})"
        )
    missed = current_count - (last + 1)
    subscribed = control(
        "subscribed",
        run_id=run.run_id,
        status=run.status,
        current_event_count=current_count,
        message="Subscribed to live events",
    )
    if missed == 0:
        return ReconnectPlan(notice=subscribed, after=last)
    catch_up = control(
        "catch_up",
        run_id=run.run_id,
        status=run.status,
        missed_events=missed,
        current_event_count=current_count,
        message=f"Sending {missed} missed events",
    )
    return ReconnectPlan(notice=catch_up, after=last, subscribe_after=current_count - 1, subscribed=subscribed)
