"""Event log backends and how to open one from a database URL."""

from __future__ import annotations

from runstream.log.base import AppendBatch, EventLog, RunEnd, RunRecord, RunStatus, Session, SessionQuery
from runstream.log.sqlite import SQLiteLog

__all__ = ["AppendBatch", "EventLog", "RunEnd", "RunRecord", "RunStatus", "Session", "SessionQuery", "SQLiteLog", "open_log"]


def open_log(url: str) -> EventLog:
    """``sqlite:///path/to/file.db`` (or a bare path), or ``postgresql://...``."""
    if url.startswith(("postgres://", "postgresql://")):
        from runstream.log.postgres import PostgresLog

        return PostgresLog(url)
    if url.startswith("sqlite:///"):
        return SQLiteLog(url[len("sqlite:///"):])
    if "://" in url:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")
    return SQLiteLog(url)
