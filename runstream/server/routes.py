"""HTTP routes (PROTOCOL.md §2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from runstream.errors import UnknownWorkflow
from runstream.runs.manager import RunManager

__all__ = ["router"]

router = APIRouter()


def manager_of(request: Request) -> RunManager:
    manager: RunManager = request.app.state.server.manager
    return manager


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/workflows")
async def list_workflows(request: Request) -> list[dict[str, Any]]:
    return [w.describe() for w in manager_of(request).workflows.values()]


@router.get("/workflows/{workflow_id}")
async def get_workflow(workflow_id: str, request: Request) -> dict[str, Any]:
    try:
        return manager_of(request).workflow(workflow_id).describe()
    except UnknownWorkflow as exc:
        raise HTTPException(404, str(exc)) from None
