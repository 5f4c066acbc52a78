"""Structured logs, opt-in: one JSON object a line, with the run id of the run that logged it.

``RUNSTREAM_LOG_FORMAT=json`` makes ``Server.serve()`` (and ``uvicorn_options()``) log
this way: runstream's, uvicorn's and any other logger's lines. The run id comes from
``RUN_ID``, a context variable each run's task sets for itself (and the tasks it starts
inherit), so a line logged anywhere below a run carries it without being passed along.
"""

from __future__ import annotations

import logging
import os
import time
from contextvars import ContextVar
from typing import Any

import orjson

__all__ = ["LOG_FORMAT_ENV", "RUN_ID", "JsonFormatter", "json_log_config", "wants_json_logs"]

LOG_FORMAT_ENV = "RUNSTREAM_LOG_FORMAT"

RUN_ID: ContextVar[str | None] = ContextVar("runstream_run_id", default=None)
"""The run whose task is logging (None outside runs)."""

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "run_id", ...extra fields, "exception"}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": RUN_ID.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def wants_json_logs() -> bool:
    return os.environ.get(LOG_FORMAT_ENV, "").strip().lower() == "json"


def json_log_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` (uvicorn's ``log_config``): every logger to stderr as JSON."""
    numeric = logging.getLevelName(level.upper())
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["json"], "level": numeric},
        "loggers": {
            name: {"handlers": [], "level": numeric, "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "runstream")
        },
    }
