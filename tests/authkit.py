"""Tokens and a JWT-secured server for the auth, isolation, limits and fuzz tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt

from runstream import AuthConfig, Limits, Server, Workflow
from tests.conftest import RunningServer, serve_in_thread

__all__ = ["SECRET", "bearer", "jwt_server", "token"]

SECRET = "a-test-secret-of-at-least-32-bytes!"


def token(sub: str | None = "alice", scopes: Any = "workflows:run", ttl: float = 3600, secret: str = SECRET,
          **claims: Any) -> str:
    """An HS256 JWT for ``sub`` with ``scopes`` (a list, or a space-separated string); by default
    valid for an hour, so that the tokens modules mint at import outlast a whole suite run."""
    now = time.time()
    body: dict[str, Any] = {"iat": int(now), "exp": int(now + ttl), **claims}
    if sub is not None:
        body["sub"] = sub
    if scopes is not None:
        body["scopes"] = scopes
    return jwt.encode(body, secret, algorithm="HS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@contextmanager
def jwt_server(tmp_path: Path, workflows: list[Workflow], isolation: bool = True, limits: Limits | None = None,
               **auth: Any) -> Iterator[RunningServer]:
    config = AuthConfig(jwt_secret=SECRET, user_isolation=isolation, security_key="admin-key", **auth)
    server = Server(workflows=workflows, database_url=f"sqlite:///{tmp_path}/runs.db", auth=config,
                    limits=limits or Limits())
    with serve_in_thread(server) as running:
        yield running
