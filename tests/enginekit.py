"""Run a workflow on the engine alone: a ``RunContext`` whose ``emit`` appends to a list."""

from __future__ import annotations

from typing import Any

from runstream import RunContext, StepOutput, Workflow

__all__ = ["Event", "context", "first", "names", "outline", "run"]

Event = tuple[str, dict[str, Any]]


def context(events: list[Event], completed: dict[str, StepOutput] | None = None) -> RunContext:
    async def emit(name: str, fields: dict[str, Any]) -> None:
        events.append((name, fields))

    return RunContext(run_id="run-1", workflow_id="wf", workflow_name="WF", sink=emit, completed_steps=completed or {})


async def run(workflow: Workflow, message: Any = "go", completed: dict[str, StepOutput] | None = None) -> list[Event]:
    """Every event of one run; with ``completed``, a run resumed with those parts done."""
    events: list[Event] = []
    await workflow.run(context(events, completed), message, resumed=completed is not None)
    return events


def names(events: list[Event]) -> list[str]:
    return [name for name, _ in events]


def outline(events: list[Event]) -> list[tuple[str, str | None]]:
    """Event names with the step each belongs to: what a client would see."""
    return [(name, fields.get("step_name")) for name, fields in events]


def first(events: list[Event], name: str, step_name: str | None = None) -> dict[str, Any]:
    return next(f for n, f in events if n == name and (step_name is None or f.get("step_name") == step_name))
