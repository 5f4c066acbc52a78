"""One server per SQLite file: an advisory lock on ``<database>.lock`` beside it.

Two servers on one SQLite file would each take the other's runs for orphans.
The lock is ``flock``: the kernel drops it when its holder exits, however it
exits (``kill -9`` included), so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from runstream.errors import DatabaseInUse

__all__ = ["DatabaseLock"]


class DatabaseLock:
    """``DatabaseLock(path).acquire()`` or raise ``DatabaseInUse`` naming the holder; ``release()``."""

    def __init__(self, database: str | Path) -> None:
        self.database = str(database)
        self.path = Path(f"{database}.lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DatabaseInUse(
                f"{self.database} is in use by another runstream server ({holder}); stop it, or give "
                f"this server its own database (RUNSTREAM_DATABASE_URL=sqlite:///other.db)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)  # closing the descriptor drops the flock
