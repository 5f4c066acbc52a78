"""CORS for the HTTP API: off unless origins are named, since a page of any origin that may
call the API can start and cancel runs with the visitor's network position."""

from __future__ import annotations

import os
from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

__all__ = ["cors_origins_from_env", "install_cors"]


def cors_origins_from_env() -> list[str]:
    """``RUNSTREAM_CORS_ORIGINS``: comma-separated origins (``*`` for any); empty or unset: none."""
    return [o.strip() for o in os.environ.get("RUNSTREAM_CORS_ORIGINS", "").split(",") if o.strip()]


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Answer preflights and add ``Access-Control-*`` headers for ``origins``; nothing when empty."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-Run-Id"],  # the SSE answer names its run in this header
    )
