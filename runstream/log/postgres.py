"""The shared event log: PostgreSQL, for several server replicas on one database.

Same tables and semantics as ``sqlite.py``; an asyncpg pool serves appends and
reads concurrently. An append batch is one transaction: every run's events in
one ``COPY`` (the cheapest way in from 64 rows up), then the runs that ended in
one ``UPDATE``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from runstream.events import StoredEvent
from runstream.log.base import FINISHED_STATUSES, AppendBatch, RunRecord, RunStatus, Session, SessionQuery
from runstream.log.rows import (
    RUN_COLUMNS,
    SESSION_COLUMNS,
    dumps,
    like_pattern,
    run_from_row,
    session_from_row,
    session_name_of,
)

__all__ = ["PostgresLog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    workflow_name TEXT,
    session_id TEXT,
    user_id TEXT,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    error TEXT,
    owner TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS pause_expires_at DOUBLE PRECISION;
CREATE INDEX IF NOT EXISTS runs_by_pause_expiry ON runs (pause_expires_at) WHERE pause_expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow_id, created_at);
CREATE INDEX IF NOT EXISTS runs_by_session ON runs (session_id, created_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    event_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, event_index)
);
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    workflow_id TEXT,
    user_id TEXT,
    state TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    session_name TEXT
);
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS session_name TEXT;
CREATE INDEX IF NOT EXISTS sessions_by_created ON sessions (created_at);
"""

_SCHEMA_LOCK = 0x72756E73  # replicas starting together create the tables one at a time
_QUEUE_LOCK = 0x72756E71  # replicas enqueueing together check the queue's depth one at a time


_EVENT_COLUMNS = ["run_id", "event_index", "name", "data"]

_RENEW_LEASE = (
    "WITH expired AS (DELETE FROM owners WHERE expires_at <= clock_timestamp()) "
    "INSERT INTO owners VALUES ($1, clock_timestamp() + make_interval(secs => $2)) "
    "ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at"
)

_END_RUNS = (
    "UPDATE runs SET status=e.status, output=e.output, error=e.error, pause_expires_at=e.expires, updated_at=$5 "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $6::float8[]) "
    "AS e(run_id, status, output, error, expires) "
    "WHERE runs.run_id = e.run_id"
)

_OPEN_SESSION = (
    f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, '{{}}', $4, $4, $5) "
    "ON CONFLICT (session_id) DO UPDATE SET updated_at = excluded.updated_at, "
    "workflow_id = COALESCE(sessions.workflow_id, excluded.workflow_id), "
    "user_id = COALESCE(sessions.user_id, excluded.user_id)"
)

_INSERT_COLUMNS = (
    "run_id, workflow_id, workflow_name, session_id, user_id, status, input, output, error, owner, "
    "created_at, updated_at"
)

def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """``col=$1 AND ...`` for the filters that are set, and their values."""
    used = {k: v for k, v in filters.items() if v is not None}
    where = " AND ".join(f"{k}=${i}" for i, k in enumerate(used, 1)) or "TRUE"
    return where, list(used.values())


class PostgresLog:
    """``PostgresLog("postgresql://user@host/db")``: the log that replicas share.

    Extra URL query parameters are PostgreSQL settings (asyncpg passes them on),
    e.g. ``?search_path=tenant_a`` to keep one deployment's tables in a schema.
    """

    def __init__(self, url: str, min_connections: int = 1, max_connections: int = 10) -> None:
        self.url = url
        self.min_connections = min_connections
        self.max_connections = max_connections
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "PostgresLog.open() was not awaited"
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, min_size=self.min_connections, max_size=self.max_connections)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                await conn.execute(_SCHEMA)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def create_run(self, run: RunRecord) -> None:
        now = time.time()
        run.created_at = run.created_at or now
        run.updated_at = now
        async with self.pool.acquire() as conn, conn.transaction():
            await _insert_run(conn, run, now)

    async def append(self, batch: AppendBatch) -> None:
        rows = [(run_id, e.index, e.name, e.data) for run_id, (events, _) in batch.items() for e in events]
        ends = [(run_id, end) for run_id, (_, end) in batch.items() if end is not None]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table("events", records=rows, columns=_EVENT_COLUMNS)
            if ends:
                await conn.execute(
                    _END_RUNS,
                    [run_id for run_id, _ in ends],
                    [end.status for _, end in ends],
                    [dumps(end.output) for _, end in ends],
                    [end.error for _, end in ends],
                    time.time(),
                    [end.pause_expires_at for _, end in ends],
                )

    async def read(self, run_id: str, start: int, limit: int) -> list[StoredEvent]:
        rows = await self.pool.fetch(
            "SELECT event_index, name, data FROM events WHERE run_id=$1 AND event_index>=$2 "
            "ORDER BY event_index LIMIT $3",
            run_id, start, limit,
        )
        return [StoredEvent(row[0], row[1], row[2]) for row in rows]

    async def next_index(self, run_id: str) -> int:
        last = await self.pool.fetchval("SELECT MAX(event_index) FROM events WHERE run_id=$1", run_id)
        return 0 if last is None else last + 1

    async def get_run(self, run_id: str) -> RunRecord | None:
        row = await self.pool.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id=$1", run_id)
        return run_from_row(row) if row else None

    async def list_runs(
        self,
        workflow_id: str | None = None,
        status: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        run_id_prefix: str | None = None,
    ) -> list[RunRecord]:
        where, values = _where(
            {"workflow_id": workflow_id, "status": status, "session_id": session_id, "user_id": user_id}
        )
        if run_id_prefix:
            values.append(run_id_prefix)
            where = f"{where} AND starts_with(run_id, ${len(values)})"
        n = len(values)
        sql = (
            f"SELECT {RUN_COLUMNS} FROM runs WHERE {where} "
            f"ORDER BY created_at DESC, run_id LIMIT ${n + 1} OFFSET ${n + 2}"
        )
        return [run_from_row(row) for row in await self.pool.fetch(sql, *values, limit, offset)]

    async def claim_run(self, run_id: str, owner: str | None, expected_owner: str | None) -> bool:
        result = await self.pool.execute(
            "UPDATE runs SET owner=$1, updated_at=$2 WHERE run_id=$3 AND status=$4 "
            "AND owner IS NOT DISTINCT FROM $5",
            owner, time.time(), run_id, RunStatus.RUNNING, expected_owner,
        )
        return bool(result == "UPDATE 1")

    async def set_status(self, run_id: str, expected: RunStatus, status: RunStatus, owner: str | None) -> bool:
        result = await self.pool.execute(
            "UPDATE runs SET status=$1, owner=$2, updated_at=$3 WHERE run_id=$4 AND status=$5",
            status, owner, time.time(), run_id, expected,
        )
        return bool(result == "UPDATE 1")

    async def take_paused(self, run_id: str, owner: str) -> bool:
        result = await self.pool.execute(
            "UPDATE runs SET status=$1, owner=$2, pause_expires_at=NULL, updated_at=$3 WHERE run_id=$4 AND status=$5",
            RunStatus.RUNNING, owner, time.time(), run_id, RunStatus.PAUSED,
        )
        return bool(result == "UPDATE 1")

    async def reopen_pause(self, run_id: str, owner: str, expires_at: float | None) -> bool:
        result = await self.pool.execute(
            "UPDATE runs SET status=$1, pause_expires_at=$2, updated_at=$3 WHERE run_id=$4 AND status=$5 AND owner=$6",
            RunStatus.PAUSED, expires_at, time.time(), run_id, RunStatus.RUNNING, owner,
        )
        return bool(result == "UPDATE 1")

    async def expired_pauses(self, now: float, limit: int = 100) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT run_id FROM runs WHERE pause_expires_at <= $1 AND status = $2 ORDER BY pause_expires_at LIMIT $3",
            now, RunStatus.PAUSED, limit,
        )
        return [row[0] for row in rows]

    async def running_runs(self) -> list[RunRecord]:
        rows = await self.pool.fetch(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE status=$1 ORDER BY created_at", RunStatus.RUNNING
        )
        return [run_from_row(row) for row in rows]

    # Leases use the database's clock, so replicas whose clocks disagree still agree on who is alive.

    async def renew_lease(self, owner: str, ttl: float) -> None:
        await self.pool.execute(_RENEW_LEASE, owner, ttl)

    async def release_lease(self, owner: str) -> None:
        await self.pool.execute("DELETE FROM owners WHERE owner=$1", owner)

    async def live_owners(self) -> set[str]:
        rows = await self.pool.fetch("SELECT owner FROM owners WHERE expires_at > clock_timestamp()")
        return {row[0] for row in rows}

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def count_runs(self) -> dict[tuple[str, str], int]:
        rows = await self.pool.fetch("SELECT workflow_id, status, count(*) FROM runs GROUP BY workflow_id, status")
        return {(row[0], row[1]): row[2] for row in rows}

    async def prune_runs(self, finished_before: float, keep_outputs: bool, limit: int = 100) -> int:
        with_events = "AND EXISTS (SELECT 1 FROM events e WHERE e.run_id = runs.run_id)" if keep_outputs else ""
        async with self.pool.acquire() as conn, conn.transaction():
            ids = [
                row[0]
                for row in await conn.fetch(
                    f"SELECT run_id FROM runs WHERE status = ANY($1::text[]) AND updated_at < $2 {with_events} "
                    "LIMIT $3 FOR UPDATE SKIP LOCKED",
                    list(FINISHED_STATUSES), finished_before, limit,
                )
            ]
            await conn.execute("DELETE FROM events WHERE run_id = ANY($1::text[])", ids)
            if not keep_outputs:
                await conn.execute("DELETE FROM runs WHERE run_id = ANY($1::text[])", ids)
        return len(ids)

    async def get_session(self, session_id: str) -> Session | None:
        row = await self.pool.fetchrow(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id=$1", session_id)
        return session_from_row(row) if row else None

    async def save_session(self, session: Session) -> None:
        now = time.time()
        await self.pool.execute(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (session_id) DO UPDATE SET "
            "state=excluded.state, updated_at=excluded.updated_at, "
            "workflow_id=COALESCE(excluded.workflow_id, sessions.workflow_id), "
            "user_id=COALESCE(excluded.user_id, sessions.user_id)",
            session.session_id, session.workflow_id, session.user_id, orjson.dumps(session.state).decode(),
            session.created_at or now, now, session.session_name,
        )

    async def list_sessions(self, query: SessionQuery | None = None) -> list[Session]:
        q = query or SessionQuery()
        where, values = _session_where(q)
        n = len(values)
        order = "DESC" if q.descending else "ASC"
        sql = (
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE {where} "
            f"ORDER BY {q.sort_by} {order}, session_id {order} LIMIT ${n + 1} OFFSET ${n + 2}"
        )
        return [session_from_row(row) for row in await self.pool.fetch(sql, *values, q.limit, q.offset)]

    async def count_sessions(self, query: SessionQuery | None = None) -> int:
        where, values = _session_where(query or SessionQuery())
        return int(await self.pool.fetchval(f"SELECT COUNT(*) FROM sessions WHERE {where}", *values))

    async def rename_session(self, session_id: str, session_name: str) -> bool:
        result: str = await self.pool.execute(
            "UPDATE sessions SET session_name=$1, updated_at=$2 WHERE session_id=$3", session_name, time.time(), session_id
        )
        return result == "UPDATE 1"

    async def delete_sessions(self, session_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(session_ids))
        if not ids:
            return set()
        async with self.pool.acquire() as conn, conn.transaction():
            # a run starting in one of them waits on its session's row, so it cannot slip in between
            await conn.execute("SELECT 1 FROM sessions WHERE session_id = ANY($1::text[]) FOR UPDATE", ids)
            busy = {
                row[0]
                for row in await conn.fetch(
                    "SELECT DISTINCT session_id FROM runs WHERE session_id = ANY($1::text[]) AND status = ANY($2::text[])",
                    ids, [RunStatus.RUNNING, RunStatus.QUEUED],
                )
            }
            if busy:
                return busy
            await conn.execute(
                "DELETE FROM events WHERE run_id IN (SELECT run_id FROM runs WHERE session_id = ANY($1::text[]))", ids
            )
            await conn.execute("DELETE FROM runs WHERE session_id = ANY($1::text[])", ids)
            await conn.execute("DELETE FROM sessions WHERE session_id = ANY($1::text[])", ids)
        return set()

    # -- the run queue: row claims, so that of several replicas exactly one starts each run

    async def enqueue_run(self, run: RunRecord, first: StoredEvent, max_queued: int | None) -> bool:
        now = time.time()
        run.created_at = run.created_at or now
        run.updated_at = now
        async with self.pool.acquire() as conn, conn.transaction():
            if max_queued is not None:  # replicas enqueueing together count one at a time
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _QUEUE_LOCK)
                if await conn.fetchval("SELECT COUNT(*) FROM runs WHERE status=$1", RunStatus.QUEUED) >= max_queued:
                    return False
            await _insert_run(conn, run, now)
            await conn.execute(
                "INSERT INTO events VALUES ($1,$2,$3,$4)", run.run_id, first.index, first.name, first.data
            )
        return True

    async def claim_queued(self, owner: str, limit: int, workflow_ids: Sequence[str]) -> list[RunRecord]:
        if limit <= 0 or not workflow_ids:
            return []
        rows = await self.pool.fetch(
            "UPDATE runs SET status=$1, owner=$2, updated_at=$3 WHERE run_id IN ("
            "SELECT run_id FROM runs WHERE status=$4 AND workflow_id = ANY($5::text[]) "
            "ORDER BY created_at, run_id LIMIT $6 FOR UPDATE SKIP LOCKED) "
            f"RETURNING {RUN_COLUMNS}",
            RunStatus.RUNNING, owner, time.time(), RunStatus.QUEUED, list(workflow_ids), limit,
        )
        return sorted((run_from_row(row) for row in rows), key=lambda r: (r.created_at, r.run_id))


async def _insert_run(conn: asyncpg.Connection, run: RunRecord, now: float) -> None:
    """Insert ``run``, and its session when it is new (else mark the session updated)."""
    if run.session_id is not None:
        await conn.execute(_OPEN_SESSION, run.session_id, run.workflow_id, run.user_id, now, session_name_of(run.input))
    await conn.execute(
        f"INSERT INTO runs ({_INSERT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
        run.run_id, run.workflow_id, run.workflow_name, run.session_id, run.user_id, run.status,
        dumps(run.input), dumps(run.output), run.error, run.owner, run.created_at, run.updated_at,
    )


def _session_where(query: SessionQuery) -> tuple[str, list[Any]]:
    """The WHERE clause of ``query``'s filters (``$1``...), and its values."""
    where, values = _where({"workflow_id": query.workflow_id, "user_id": query.user_id})
    if query.session_name is None:
        return where, values
    values.append(like_pattern(query.session_name))
    return f"{where} AND session_name ILIKE ${len(values)} ESCAPE '\\'", values
