"""``GET /config``: what this server is and serves, in the shape AgentOS clients read (its ``ConfigResponse``)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request

from runstream.errors import UnknownDatabase
from runstream.server.http_errors import error_responses
from runstream.server.routes import authenticate, manager_of

__all__ = ["DB_ID", "check_db_id", "router"]

DB_ID = "runstream"
"""The id AgentOS clients know the event log by (``databases``, ``db_id``): runstream has one."""

router = APIRouter(dependencies=[Depends(authenticate)], responses=error_responses(401))


def check_db_id(db_id: str | None) -> None:
    """``db_id`` as AgentOS clients send it: absent, or the log's."""
    if db_id is not None and db_id != DB_ID:
        raise UnknownDatabase(f"Database {db_id} not found; this server has one, {DB_ID!r}")


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    """The server's id and name, its one database, and its workflows (``agents``, ``teams``
    and ``interfaces`` are empty: runstream serves workflows, whose agents live in steps)."""
    title: str = request.app.title
    workflows = [
        {"id": w.id, "name": w.name, "description": w.description, "db_id": DB_ID,
         "is_factory": False, "is_component": False, "sandboxed": False}
        for w in manager_of(request).workflows.values()
    ]
    return {
        "os_id": re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or DB_ID,
        "name": title,
        "available_models": [],
        "os_database": DB_ID,
        "databases": [DB_ID],
        "session": {"dbs": [{"db_id": DB_ID, "domain_config": {"display_name": "Sessions"}}]},
        # runs outlive a crash or a deploy (they resume from the log); sessions do not queue runs
        "queue": {"durable": True, "queue_per_session": False},
        "company": None,
        "agents": [],
        "teams": [],
        "workflows": workflows,
        "interfaces": [],
    }
