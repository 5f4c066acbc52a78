"""What a served runstream prints: its loggers' configuration, and the start-up banner.

``uvicorn_options`` hands uvicorn a logging configuration in which runstream's
own loggers (``runstream.*``: runs started, failed, cancelled, resumed, taken
over, every step failure with its traceback) print beside uvicorn's, at the
level ``--log-level`` / ``RUNSTREAM_LOG_LEVEL`` names (``info`` by default).
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG
from uvicorn.logging import DefaultFormatter

__all__ = ["DEFAULT_LOG_LEVEL", "attach_runstream_handler", "banner", "log_config", "log_level_of"]

DEFAULT_LOG_LEVEL = "info"


def log_level_of(level: str | None = None) -> str:
    """``level``, else ``RUNSTREAM_LOG_LEVEL``, else ``info``; an unknown name is a clear error."""
    chosen = (level or os.environ.get("RUNSTREAM_LOG_LEVEL") or DEFAULT_LOG_LEVEL).lower()
    if chosen not in LOG_LEVELS:
        raise SystemExit(f"error: unknown log level {chosen!r}: use one of {', '.join(LOG_LEVELS)}")
    return chosen


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, its loggers at ``level``. runstream's own logger is set up
    by ``attach_runstream_handler`` instead: naming it here would make ``dictConfig`` reset the
    handlers and levels of its children (``runstream.runs.lifecycle``...) that others set."""
    return copy.deepcopy(LOGGING_CONFIG)


def attach_runstream_handler(level: str) -> None:
    """Print ``runstream.*`` records as uvicorn prints its own, at ``level``, once per process.
    The records still propagate, so handlers on the root logger (an app's, pytest's) see them."""
    logger = logging.getLogger("runstream")
    if logger.level == logging.NOTSET:
        logger.setLevel(LOG_LEVELS[level])
    if any(getattr(h, "runstream_default", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    handler.runstream_default = True  # type: ignore[attr-defined]
    logger.addHandler(handler)


def banner(workflows: Iterable[str], database: str, host: str, port: int, has_console: bool) -> str:
    """The lines ``serve`` prints once it listens: what it serves, where, and what to try next."""
    ids = list(workflows)
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
    lines = [
        f"runstream is serving {len(ids)} workflow{'s' if len(ids) != 1 else ''}: {', '.join(ids) or '(none)'}",
        f"  database   {_redact(database)}",
        f"  WebSocket  {'ws' + base.removeprefix('http')}/workflows/ws",
    ]
    if has_console:
        lines.append(f"  console    {base}/")
    lines.append(f"  API docs   {base}/docs")
    if host in ("0.0.0.0", "::"):
        lines.append(f"  listening on every interface ({host}): anyone who can reach this machine can start runs")
    if ids:
        url = "" if port == 7777 and shown in ("127.0.0.1", "localhost") else f" --url {base}"
        lines.append("Try it from another terminal:")
        lines.append(f'  {_cli()} run {ids[0]}{url} "hello"')
    return "\n".join(lines)


def _redact(url: str) -> str:
    """A database URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _cli() -> str:
    """How to call ``runstream`` from here: this environment's script, relative when it is below."""
    script = Path(sys.prefix) / "bin" / "runstream"
    if sys.prefix == sys.base_prefix or not script.exists():
        return "runstream"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)
