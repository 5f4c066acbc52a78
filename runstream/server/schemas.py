"""The response bodies of the HTTP routes as pydantic models, so ``/openapi.json`` types them.

They describe the JSON the routes already send; they change none of it. Each
allows extra keys, so a field added to a route's answer is passed on (and
should then be added here), never silently dropped.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "Cancelled", "Health", "PageMeta", "RunBody", "SessionBody", "SessionPage", "SessionRun", "StepSummary",
    "WorkflowSummary",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Health(_Open):
    """``GET /health``: ``{"status": "ok"}`` while the process serves."""

    status: str


class StepSummary(_Open):
    name: str
    type: str
    """The step's kind: ``Step``, ``Parallel``, ``Condition``, ``Loop``, ``Router``, ``Steps``."""


class WorkflowSummary(_Open):
    """A served workflow: its id (what runs are started with), steps and input schema."""

    id: str
    name: str
    description: str | None = None
    steps: list[StepSummary]
    input_schema: dict[str, Any] | None = None
    """The JSON schema a run's input must match, when the workflow declares one."""


class RunBody(_Open):
    """A run: where it stands and what it produced. ``status`` is runstream's (``queued``, ``running``,
    ``paused``, ``completed``, ``error``, ``cancelled``) on ``/runs`` and the ``202`` of a background start;
    AgentOS's (``PENDING``, ``RUNNING``, ``PAUSED``, ``COMPLETED``, ``ERROR``, ``CANCELLED``) on the
    run routes AgentOS also has (docs/http.md, "Run statuses on each route"). A paused run's body
    also has what it waits on, as AgentOS's run dict has it: ``step_requirements``, ``pause_kind``,
    ``paused_step_name``, ``paused_step_index`` (and ``error_requirements`` for a pause on a step's
    error); they are extra keys here, not fields, so that other runs' bodies do not gain them as nulls."""

    run_id: str
    workflow_id: str
    workflow_name: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    status: str
    input: Any = None
    output: Any = None
    error: str | None = None
    created_at: float
    """Epoch seconds."""
    updated_at: float
    event_count: int
    """How many events the run's log holds: the next ``event_index`` is this number."""
    content: Any = None
    """``output`` again, as AgentOS names it."""


class Cancelled(_Open):
    """``POST .../cancel``: the run was told to stop; it ends with ``WorkflowCancelled``."""

    run_id: str
    cancelled: bool


class SessionBody(_Open):
    """A session as AgentOS's ``SessionSchema`` and ``WorkflowSessionDetailSchema`` read it
    (``GET /sessions/{id}``, an item of ``GET /sessions``); absent fields are left out, not null.
    Timestamps are ISO 8601 (UTC)."""

    session_id: str
    session_name: str
    session_type: str
    """Always ``workflow``."""
    user_id: str | None = None
    workflow_id: str | None = None
    workflow_name: str | None = None
    session_state: dict[str, Any] | None = None
    session_data: dict[str, Any] | None = None
    """``{"session_state": ...}``, where AgentOS's client reads the state from."""
    workflow_data: dict[str, Any] | None = None
    created_at: str
    updated_at: str


class PageMeta(_Open):
    page: int
    limit: int
    total_pages: int
    total_count: int
    search_time_ms: float


class SessionPage(_Open):
    """``GET /sessions``: one page of sessions, as AgentOS's paginated answer."""

    data: list[SessionBody]
    meta: PageMeta


class SessionRun(_Open):
    """A run as AgentOS's ``WorkflowRunSchema`` reads it (``GET /sessions/{id}/runs``): status
    upper case (``PENDING``, ``RUNNING``, ``COMPLETED``, ``CANCELLED``, ``ERROR``), timestamps
    ISO 8601; absent fields are left out, not null."""

    run_id: str
    run_input: str | None = None
    workflow_id: str
    workflow_name: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    status: str
    cancellation_stage: str | None = None
    content: str | dict[str, Any] | None = None
    """A string or an object (AgentOS's client rejects anything else); other outputs are sent as JSON text."""
    content_type: str | None = None
    metrics: dict[str, Any]
    """The run's ``WorkflowMetrics`` (``steps`` keyed by step name), ``{}`` until it completes."""
    error: str | None = None
    event_count: int
    created_at: str
    updated_at: str
