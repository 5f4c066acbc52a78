"""Every HTTP error is JSON of one shape: ``{"detail": "...", "code": "..."}``.

Clients branch on ``code`` (stable), people read ``detail``. This module only
maps runstream's errors (``runstream.errors``, the one tree) to status codes;
the codes of routing and validation errors that FastAPI raises itself are
``not_found``, ``method_not_allowed``, ``invalid_request`` and ``http_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from runstream.errors import (
    AmbiguousRunId,
    DatabaseInUse,
    AuthConfigError,
    Forbidden,
    IdleTimeout,
    InvalidContinue,
    InvalidInput,
    LimitExceeded,
    InvalidRequest,
    LogWriteFailed,
    MessageTooLarge,
    ModelError,
    ProtocolError,
    RunNotActive,
    RunNotPaused,
    RunstreamError,
    SessionActive,
    ShuttingDown,
    StepFailed,
    RateLimited,
    TokenExpired,
    TooManyConnections,
    TooManyRuns,
    QueueFull,
    TooManySubscriptions,
    TooSlow,
    Unauthorized,
    UnknownDatabase,
    UnknownRun,
    UnknownSession,
    UnknownWorkflow,
)

__all__ = ["STATUS", "ErrorBody", "error_responses", "install_error_handlers", "status_of"]

STATUS: dict[type[RunstreamError], int] = {
    InvalidRequest: 422,
    ProtocolError: 422,
    MessageTooLarge: 413,
    InvalidInput: 422,
    Unauthorized: 401,
    Forbidden: 403,
    TokenExpired: 401,
    LimitExceeded: 429,
    RateLimited: 429,
    TooManyRuns: 429,
    QueueFull: 429,
    TooManyConnections: 429,
    TooManySubscriptions: 429,
    IdleTimeout: 408,
    TooSlow: 429,
    AuthConfigError: 500,
    UnknownWorkflow: 404,
    UnknownRun: 404,
    UnknownSession: 404,
    UnknownDatabase: 404,
    RunNotActive: 409,
    SessionActive: 409,
    RunNotPaused: 409,
    InvalidContinue: 400,
    ShuttingDown: 503,
    LogWriteFailed: 503,
    StepFailed: 500,
    ModelError: 502,
    DatabaseInUse: 503,
    AmbiguousRunId: 409,
}
"""The HTTP status of each error class; an error not listed (nor its bases) is a 500."""


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: str
    code: str


def status_of(exc: RunstreamError) -> int:
    """The status of ``exc``'s class, or of its nearest listed base; 500 when none is listed."""
    for kind in type(exc).__mro__:
        if issubclass(kind, RunstreamError) and kind in STATUS:
            return STATUS[kind]
    return 500


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's OpenAPI entry: each status with the ``ErrorBody`` model."""
    words = {401: "Missing, invalid or expired bearer token (code unauthorized or token_expired)",
             403: "The token's scopes do not allow this (code forbidden)",
             404: "Unknown workflow, run or session (another user's looks the same)",
             413: "Request body too large (code message_too_large)",
             429: "A limit was reached (code rate_limited, too_many_runs, queue_full, too_many_connections); see Retry-After",
             409: "The run is not running", 422: "Invalid request data",
             503: "The server is shutting down and takes no new runs, or its log cannot be written"}
    return {s: {"model": ErrorBody, "description": words.get(s, "Error")} for s in statuses}


def _json(status: int, detail: str, code: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


async def _on_runstream_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RunstreamError)
    headers: dict[str, str] | None = None
    if status_of(exc) == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, LimitExceeded) and exc.retry_after is not None:
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
    return _json(status_of(exc), str(exc), exc.code, headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"] if p not in ("body", "query", "path", "header", "form"))
        problems.append(f"{where or 'request'}: {error['msg']}")
    return _json(422, "; ".join(problems) or "Invalid request", "invalid_request")


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _json(exc.status_code, str(exc.detail), code, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` an ``ErrorBody``."""
    app.add_exception_handler(RunstreamError, _on_runstream_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
