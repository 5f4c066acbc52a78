"""Rows as both backends store them: JSON columns as text, runs and sessions by position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from runstream.log.base import RunRecord, RunStatus, Session

__all__ = ["RUN_COLUMNS", "SESSION_COLUMNS", "dumps", "loads", "run_from_row", "like_pattern", "session_from_row", "session_name_of"]

RUN_COLUMNS = (
    "run_id, workflow_id, workflow_name, session_id, user_id, status, input, output, error, owner, "
    "created_at, updated_at, "
    "(SELECT COALESCE(MAX(event_index) + 1, 0) FROM events e WHERE e.run_id = runs.run_id)"
)
"""What to select of ``runs``, in the order ``run_from_row`` reads it: the same SQL on both backends."""


SESSION_COLUMNS = "session_id, workflow_id, user_id, state, created_at, updated_at, session_name"
"""What to select of ``sessions``, in the order ``session_from_row`` reads it."""


def session_name_of(run_input: Any) -> str | None:
    """A new session's name: its first run's input, as text (AgentOS names sessions so)."""
    if run_input is None or isinstance(run_input, str):
        return run_input
    return orjson.dumps(run_input).decode()


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def run_from_row(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        workflow_id=row[1],
        workflow_name=row[2],
        session_id=row[3],
        user_id=row[4],
        status=RunStatus(row[5]),
        input=loads(row[6]),
        output=loads(row[7]),
        error=row[8],
        owner=row[9],
        created_at=row[10],
        updated_at=row[11],
        event_count=row[12],
    )


def session_from_row(row: Sequence[Any]) -> Session:
    return Session(row[0], row[1], row[2], orjson.loads(row[3]), row[4], row[5], row[6])
