"""Run a cookbook workflow in this process and print its events: no server needed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from runstream import RunContext, Workflow


def show(workflow: Workflow, message: Any, session_state: dict[str, Any] | None = None) -> None:
    """Print each event of one run, indented by its step's depth."""

    async def emit(name: str, fields: dict[str, Any]) -> None:
        indent = "  " * (fields.get("depth", -1) + 1)
        label = fields.get("step_name") or ""
        content = fields.get("content")
        if name == "RunContent":
            return  # one event per token: too chatty to print
        print(f"{indent}{name} {label}" + (f" -> {content!r}"[:100] if content is not None else ""))

    ctx = RunContext(
        run_id=str(uuid.uuid4()),
        workflow_id=workflow.id,
        workflow_name=workflow.name,
        sink=emit,
        session_state=session_state if session_state is not None else {},
    )
    asyncio.run(workflow.run(ctx, workflow.validate_input(message)))
