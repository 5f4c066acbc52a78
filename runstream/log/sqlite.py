"""The embedded event log: one SQLite file in WAL mode, zero setup.

One writer thread owns the write connection (SQLite has one writer anyway);
readers use their own connections on a small thread pool, so replays never
wait behind appends. Small appends commit on the event loop's thread, on a
connection that leaves checkpoints (copying the WAL into the database, ~5 ms)
to the writer thread, and that never waits for SQLite's write lock: while
another transaction holds it (a retention prune on the writer thread, or
another process), the append goes to the writer thread and waits there, so
the event loop, and every client it serves, does not stall behind it
(bench/sqlite_stall.py measures it).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

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

__all__ = ["SQLiteLog"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

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
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow_id, created_at);
CREATE INDEX IF NOT EXISTS runs_by_session ON runs (session_id, created_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    event_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, event_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    workflow_id TEXT,
    user_id TEXT,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    session_name TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_created ON sessions (created_at);
"""


_INSERT_COLUMNS = (
    "run_id, workflow_id, workflow_name, session_id, user_id, status, input, output, error, owner, "
    "created_at, updated_at"
)


def _add_pause_column(conn: sqlite3.Connection) -> None:
    """``pause_expires_at`` came after the first release: logs made before get it here."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    if "pause_expires_at" not in columns:
        conn.execute("ALTER TABLE runs ADD COLUMN pause_expires_at REAL")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS runs_by_pause_expiry ON runs (pause_expires_at) "
        "WHERE pause_expires_at IS NOT NULL"
    )


def _enable_wal(conn: sqlite3.Connection, tries: int = 50) -> None:
    """Switching a fresh file to WAL needs a moment alone with it, and SQLite does not wait
    for that (no busy handler): processes opening one new file together take turns."""
    for attempt in range(tries):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == tries - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


INLINE_APPEND = 16
"""Appends of at most this many events commit on the caller's thread: such a commit
takes ~40 µs here, less than the two thread hand-offs it would otherwise wait for,
which is what a trickle of tokens (one small batch each) pays in latency."""

CHECKPOINT_PAGES = 1000
"""Inline commits do not checkpoint (copy the WAL back into the database: ~5 ms that would
stall the event loop); after about this many WAL pages of them, SQLite's own default, the
writer thread does."""
WAL_PAGES_LIMIT = 4 * CHECKPOINT_PAGES
"""A checkpoint can only reuse the WAL from its start once it has copied every page, which
commits arriving meanwhile prevent. A WAL found this large sends the next append through
the writer thread, whose commit checkpoints with no other writer in the way."""


BUSY_TIMEOUT = 30.0
"""Seconds a connection off the event loop waits for another writer before giving up."""
INLINE_BUSY_TIMEOUT = 0.0
"""The event loop's connection does not wait for another writer at all: ``append`` then
hands the batch to the writer thread, which waits instead (bench/sqlite_stall.py sets
this to ``BUSY_TIMEOUT`` to measure what waiting on the loop would cost)."""


INSERT_ROWS = 128
"""Events per INSERT statement (512 parameters: within any SQLite's limit). ``executemany``
steps once per row and lets go of the GIL each time; when the event loop is busy, every
row then waits to take it back, and a batch of 256 could take milliseconds."""
BIG_EVENT_CHARS = 64 * 1024
"""Larger events (a run's last ones carry its whole answer) go in one-row statements: SQLite
copies every value bound, and a statement keeps its values until it is next used."""


@functools.cache
def _insert_sql(rows: int) -> str:
    return "INSERT INTO events VALUES " + ",".join(["(?,?,?,?)"] * rows)


def _insert_events(conn: sqlite3.Connection, run_id: str, events: Sequence[StoredEvent]) -> None:
    """``events`` in statements of a power of two rows each: a few statements, all cached."""
    done = 0
    while done < len(events):
        small = done
        while small < len(events) and small - done < INSERT_ROWS and len(events[small].data) <= BIG_EVENT_CHARS:
            small += 1
        rows = 1 << ((small - done).bit_length() - 1) if small > done else 1
        values = [v for e in events[done : done + rows] for v in (run_id, e.index, e.name, e.data)]
        conn.execute(_insert_sql(rows), values)
        done += rows


class SQLiteLog:
    """``SQLiteLog(path)``: the default log. ``synchronous=NORMAL`` in WAL mode survives a
    process crash (``kill -9``) without losing a committed event; only a power loss can
    take back the last commits."""

    def __init__(self, path: str | Path, readers: int = 2) -> None:
        self.path = str(path)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="runstream-sqlite-w")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="runstream-sqlite-r")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._unchecked = 0  # WAL pages (estimated) inline commits wrote since the last checkpoint began
        self._checkpoint: Future[None] | None = None
        self._wal_large = False
        self.inline_fallbacks = 0
        """Small appends that found another writer in the way and went to the writer thread."""

    def _connect(self, busy_timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=busy_timeout)
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._connections.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _inline_conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "inline", None)
        if conn is None:
            conn = self._local.inline = self._connect(busy_timeout=INLINE_BUSY_TIMEOUT)
            conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def _transaction(self, fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection | None = None) -> T:
        conn = conn or self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._transaction, fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, lambda: fn(self._conn()))

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._create_schema)
        await self._write(_add_pause_column)

    def _create_schema(self) -> None:
        conn = self._conn()
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name='sessions'").fetchone():
            columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
            if "session_name" not in columns:  # a log written before sessions had names
                conn.execute("ALTER TABLE sessions ADD COLUMN session_name TEXT")
        conn.executescript(_SCHEMA)

    async def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    async def create_run(self, run: RunRecord) -> None:
        now = time.time()
        run.created_at = run.created_at or now
        run.updated_at = now

        await self._write(lambda c: _insert_run(c, run, now))

    async def append(self, batch: AppendBatch) -> None:
        now = time.time()

        def write(c: sqlite3.Connection) -> None:
            for run_id, (events, end) in batch.items():
                _insert_events(c, run_id, events)
                if end is not None:
                    c.execute(
                        "UPDATE runs SET status=?, output=?, error=?, pause_expires_at=?, updated_at=? WHERE run_id=?",
                        (end.status, dumps(end.output), end.error, end.pause_expires_at, now, run_id),
                    )

        if sum(len(events) for events, _ in batch.values()) <= INLINE_APPEND and not self._wal_large:
            try:
                self._transaction(write, self._inline_conn())
            except sqlite3.OperationalError as exc:  # BEGIN found the lock taken, or it rolled back: nothing written
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                self.inline_fallbacks += 1
                await self._write(write)  # wait for the other writer off the event loop
                return
            # ~3 WAL pages a commit (2.7 measured for one 600-byte event), more for big events
            self._unchecked += sum(3 + sum(len(e.data) for e in events) // 4096 for events, _ in batch.values())
            if self._unchecked >= CHECKPOINT_PAGES and (self._checkpoint is None or self._checkpoint.done()):
                self._unchecked = 0
                self._checkpoint = self._writer.submit(self._checkpoint_wal)
        else:
            await self._write(write)
            self._wal_large = False

    def _checkpoint_wal(self) -> None:
        try:
            _, wal_pages, _ = self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the WAL keeps every commit meanwhile; the next checkpoint tries again
            logger.warning("SQLite checkpoint of %s failed: %s", self.path, exc)
            return
        self._wal_large = wal_pages >= WAL_PAGES_LIMIT

    async def read(self, run_id: str, start: int, limit: int) -> list[StoredEvent]:
        def query(c: sqlite3.Connection) -> list[StoredEvent]:
            rows = c.execute(
                "SELECT event_index, name, data FROM events WHERE run_id=? AND event_index>=? "
                "ORDER BY event_index LIMIT ?",
                (run_id, start, limit),
            ).fetchall()
            return [StoredEvent(*row) for row in rows]

        return await self._read(query)

    async def next_index(self, run_id: str) -> int:
        def query(c: sqlite3.Connection) -> int:
            row = c.execute("SELECT MAX(event_index) FROM events WHERE run_id=?", (run_id,)).fetchone()
            return -1 if row[0] is None else int(row[0])

        return await self._read(query) + 1

    async def get_run(self, run_id: str) -> RunRecord | None:
        def query(c: sqlite3.Connection) -> RunRecord | None:
            row = c.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id=?", (run_id,)).fetchone()
            return run_from_row(row) if row else None

        return await self._read(query)

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
        filters = {"workflow_id": workflow_id, "status": status, "session_id": session_id, "user_id": user_id}
        used = {k: v for k, v in filters.items() if v is not None}
        clauses, values = [f"{k}=?" for k in used], list(used.values())
        if run_id_prefix:  # a range on the primary key (BINARY collation): a prefix match that uses the index
            clauses.append("run_id >= ? AND run_id < ?")
            values += [run_id_prefix, run_id_prefix[:-1] + chr(ord(run_id_prefix[-1]) + 1)]
        where = " AND ".join(clauses) or "1=1"
        sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE {where} ORDER BY created_at DESC, run_id LIMIT ? OFFSET ?"
        return await self._read(lambda c: [run_from_row(r) for r in c.execute(sql, (*values, limit, offset))])

    async def claim_run(self, run_id: str, owner: str | None, expected_owner: str | None) -> bool:
        def claim(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE runs SET owner=?, updated_at=? WHERE run_id=? AND status=? AND owner IS ?",
                (owner, time.time(), run_id, RunStatus.RUNNING, expected_owner),
            )
            return cur.rowcount == 1

        return await self._write(claim)

    async def set_status(self, run_id: str, expected: RunStatus, status: RunStatus, owner: str | None) -> bool:
        def move(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE runs SET status=?, owner=?, updated_at=? WHERE run_id=? AND status=?",
                (status, owner, time.time(), run_id, expected),
            )
            return cur.rowcount == 1

        return await self._write(move)

    async def take_paused(self, run_id: str, owner: str) -> bool:
        def take(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE runs SET status=?, owner=?, pause_expires_at=NULL, updated_at=? WHERE run_id=? AND status=?",
                (RunStatus.RUNNING, owner, time.time(), run_id, RunStatus.PAUSED),
            )
            return cur.rowcount == 1

        return await self._write(take)

    async def reopen_pause(self, run_id: str, owner: str, expires_at: float | None) -> bool:
        def reopen(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE runs SET status=?, pause_expires_at=?, updated_at=? WHERE run_id=? AND status=? AND owner=?",
                (RunStatus.PAUSED, expires_at, time.time(), run_id, RunStatus.RUNNING, owner),
            )
            return cur.rowcount == 1

        return await self._write(reopen)

    async def expired_pauses(self, now: float, limit: int = 100) -> list[str]:
        return await self._read(
            lambda c: [
                row[0]
                for row in c.execute(
                    "SELECT run_id FROM runs WHERE pause_expires_at<=? AND status=? ORDER BY pause_expires_at LIMIT ?",
                    (now, RunStatus.PAUSED, limit),
                )
            ]
        )

    async def running_runs(self) -> list[RunRecord]:
        return await self._read(
            lambda c: [
                run_from_row(r)
                for r in c.execute(
                    f"SELECT {RUN_COLUMNS} FROM runs WHERE status=? ORDER BY created_at", (RunStatus.RUNNING,)
                )
            ]
        )

    async def renew_lease(self, owner: str, ttl: float) -> None:
        def renew(c: sqlite3.Connection) -> None:
            now = time.time()
            c.execute("DELETE FROM owners WHERE expires_at<=?", (now,))
            c.execute(
                "INSERT INTO owners VALUES (?,?) ON CONFLICT(owner) DO UPDATE SET expires_at=excluded.expires_at",
                (owner, now + ttl),
            )

        await self._write(renew)

    async def release_lease(self, owner: str) -> None:
        await self._write(lambda c: c.execute("DELETE FROM owners WHERE owner=?", (owner,)))

    async def live_owners(self) -> set[str]:
        return await self._read(
            lambda c: {row[0] for row in c.execute("SELECT owner FROM owners WHERE expires_at>?", (time.time(),))}
        )

    async def ping(self) -> None:
        await self._read(lambda c: c.execute("SELECT 1").fetchone())

    async def count_runs(self) -> dict[tuple[str, str], int]:
        rows = await self._read(
            lambda c: c.execute("SELECT workflow_id, status, count(*) FROM runs GROUP BY workflow_id, status").fetchall()
        )
        return {(row[0], row[1]): row[2] for row in rows}

    async def prune_runs(self, finished_before: float, keep_outputs: bool, limit: int = 100) -> int:
        def prune(c: sqlite3.Connection) -> int:
            done = ",".join("?" * len(FINISHED_STATUSES))
            with_events = "AND EXISTS (SELECT 1 FROM events e WHERE e.run_id=runs.run_id)" if keep_outputs else ""
            ids = [
                row[0]
                for row in c.execute(
                    f"SELECT run_id FROM runs WHERE status IN ({done}) AND updated_at<? {with_events} LIMIT ?",
                    (*FINISHED_STATUSES, finished_before, limit),
                )
            ]
            c.executemany("DELETE FROM events WHERE run_id=?", [(i,) for i in ids])
            if not keep_outputs:
                c.executemany("DELETE FROM runs WHERE run_id=?", [(i,) for i in ids])
            return len(ids)

        return await self._write(prune)

    async def get_session(self, session_id: str) -> Session | None:
        def query(c: sqlite3.Connection) -> Session | None:
            row = c.execute(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id=?", (session_id,)).fetchone()
            return session_from_row(row) if row else None

        return await self._read(query)

    async def save_session(self, session: Session) -> None:
        now = time.time()
        await self._write(
            lambda c: c.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?,?,?,?,?,?,?) ON CONFLICT(session_id) DO UPDATE SET "
                "state=excluded.state, updated_at=excluded.updated_at, "
                "workflow_id=COALESCE(excluded.workflow_id, workflow_id), user_id=COALESCE(excluded.user_id, user_id)",
                (session.session_id, session.workflow_id, session.user_id, orjson.dumps(session.state).decode(),
                 session.created_at or now, now, session.session_name),
            )
        )

    async def list_sessions(self, query: SessionQuery | None = None) -> list[Session]:
        q = query or SessionQuery()
        where, values = _session_where(q)
        order = "DESC" if q.descending else "ASC"
        sql = (
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE {where} "
            f"ORDER BY {q.sort_by} {order}, session_id {order} LIMIT ? OFFSET ?"
        )
        return await self._read(lambda c: [session_from_row(r) for r in c.execute(sql, (*values, q.limit, q.offset))])

    async def count_sessions(self, query: SessionQuery | None = None) -> int:
        where, values = _session_where(query or SessionQuery())
        return await self._read(lambda c: int(c.execute(f"SELECT COUNT(*) FROM sessions WHERE {where}", values).fetchone()[0]))

    async def rename_session(self, session_id: str, session_name: str) -> bool:
        def rename(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE sessions SET session_name=?, updated_at=? WHERE session_id=?", (session_name, time.time(), session_id)
            )
            return cur.rowcount == 1

        return await self._write(rename)

    async def delete_sessions(self, session_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(session_ids))

        def delete(c: sqlite3.Connection) -> set[str]:
            marks = ",".join("?" * len(ids))
            busy = {
                row[0]
                for row in c.execute(
                    f"SELECT DISTINCT session_id FROM runs WHERE session_id IN ({marks}) AND status IN (?,?)",
                    (*ids, RunStatus.RUNNING, RunStatus.QUEUED),
                )
            }
            if busy:
                return busy
            c.execute(f"DELETE FROM events WHERE run_id IN (SELECT run_id FROM runs WHERE session_id IN ({marks}))", ids)
            c.execute(f"DELETE FROM runs WHERE session_id IN ({marks})", ids)
            c.execute(f"DELETE FROM sessions WHERE session_id IN ({marks})", ids)
            return set()

        return await self._write(delete) if ids else set()

    # -- the run queue: one writer at a time, so a claim is exactly-once within this process

    async def enqueue_run(self, run: RunRecord, first: StoredEvent, max_queued: int | None) -> bool:
        now = time.time()
        run.created_at = run.created_at or now
        run.updated_at = now

        def insert(c: sqlite3.Connection) -> bool:
            if max_queued is not None:
                (depth,) = c.execute("SELECT COUNT(*) FROM runs WHERE status=?", (RunStatus.QUEUED,)).fetchone()
                if depth >= max_queued:
                    return False
            _insert_run(c, run, now)
            _insert_events(c, run.run_id, [first])
            return True

        return await self._write(insert)

    async def claim_queued(self, owner: str, limit: int, workflow_ids: Sequence[str]) -> list[RunRecord]:
        if limit <= 0 or not workflow_ids:
            return []
        marks = ",".join("?" * len(workflow_ids))

        def claim(c: sqlite3.Connection) -> list[RunRecord]:
            ids = [
                row[0]
                for row in c.execute(
                    f"SELECT run_id FROM runs WHERE status=? AND workflow_id IN ({marks}) "
                    "ORDER BY created_at, run_id LIMIT ?",
                    (RunStatus.QUEUED, *workflow_ids, limit),
                )
            ]
            claimed = []
            for run_id in ids:
                c.execute(
                    "UPDATE runs SET status=?, owner=?, updated_at=? WHERE run_id=? AND status=?",
                    (RunStatus.RUNNING, owner, time.time(), run_id, RunStatus.QUEUED),
                )
                row = c.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id=?", (run_id,)).fetchone()
                claimed.append(run_from_row(row))
            return claimed

        return await self._write(claim)


def _insert_run(c: sqlite3.Connection, run: RunRecord, now: float) -> None:
    """Insert ``run``, and its session when it is new (else mark the session updated)."""
    if run.session_id is not None:
        c.execute(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?,?,?,'{{}}',?,?,?) "
            "ON CONFLICT(session_id) DO UPDATE SET updated_at=excluded.updated_at, "
            "workflow_id=COALESCE(workflow_id, excluded.workflow_id), "
            "user_id=COALESCE(user_id, excluded.user_id)",
            (run.session_id, run.workflow_id, run.user_id, now, now, session_name_of(run.input)),
        )
    c.execute(
        f"INSERT INTO runs ({_INSERT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (run.run_id, run.workflow_id, run.workflow_name, run.session_id, run.user_id, run.status,
         dumps(run.input), dumps(run.output), run.error, run.owner, run.created_at, run.updated_at),
    )


def _session_where(query: SessionQuery) -> tuple[str, list[Any]]:
    """The WHERE clause of ``query``'s filters, and its values."""
    clauses: list[str] = []
    values: list[Any] = []
    for column in ("workflow_id", "user_id"):
        value = getattr(query, column)
        if value is not None:
            clauses.append(f"{column}=?")
            values.append(value)
    if query.session_name is not None:
        clauses.append("session_name LIKE ? ESCAPE '\\'")  # LIKE ignores ASCII case in SQLite
        values.append(like_pattern(query.session_name))
    return " AND ".join(clauses) or "1=1", values
