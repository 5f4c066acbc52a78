"""The web console at ``/`` and the browser library at ``/static/runstream.js``.

Both are static files shipped in the package (``runstream/static``), served
without a key: a page must load before it can ask for the key or token, which
it then sends with each API call, so nothing the server holds is readable
without it.
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

__all__ = ["STATIC_DIR", "install_console"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

_NO_CACHE = {"Cache-Control": "no-cache"}  # revalidate, so an upgraded server's page is used at once


class _StaticFiles(StaticFiles):
    """``StaticFiles`` that asks browsers to revalidate (ETag) instead of caching blindly."""

    def file_response(
        self, full_path: PathLike[str] | str, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_NO_CACHE)
        return response


def install_console(app: FastAPI) -> None:
    """Serve the console's page at ``/`` and ``runstream/static`` (its scripts, ``runstream.js``
    and its types) under ``/static``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def console() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=_NO_CACHE)

    app.include_router(router)
    app.mount("/static", _StaticFiles(directory=STATIC_DIR), name="static")
