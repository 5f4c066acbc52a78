"""Drive pauses and continues on the engine alone, folding its events as the run manager does."""

from __future__ import annotations

from typing import Any

import orjson

from runstream import Workflow
from runstream.engine.hitl import Resolution, StepRequirement, resolve
from runstream.events import WORKFLOW_PAUSED, StoredEvent
from runstream.runs.pauses import continued_event
from runstream.runs.recovery import fold_resume_plan
from tests.enginekit import Event, context

__all__ = ["Leg", "active_requirement", "answer", "start"]


class Leg:
    """A run on the engine: every event so far, and what continuing it needs."""

    def __init__(self, workflow: Workflow, message: Any) -> None:
        self.workflow = workflow
        self.message = message
        self.events: list[Event] = []

    @property
    def last(self) -> Event:
        return self.events[-1]

    @property
    def paused(self) -> bool:
        return self.last[0] == WORKFLOW_PAUSED

    def requirement(self) -> StepRequirement:
        assert self.paused, f"the run is not paused: it ended with {self.last[0]}"
        return StepRequirement.from_dict(self.last[1]["step_requirements"][-1])

    async def cont(self, resolution: Resolution) -> list[Event]:
        """Log the answer as the manager does, rebuild the run from its events, run it on;
        returns the events of this leg."""
        before = len(self.events)
        self.events.append(continued_event(self.requirement(), resolution))
        stored = [
            StoredEvent(i, name, orjson.dumps({**fields, "event": name}, default=str).decode())
            for i, (name, fields) in enumerate(self.events)
        ]
        plan = fold_resume_plan(stored)
        ctx = context(self.events, plan.completed)
        ctx.started_steps, ctx.resolutions, ctx.answered = plan.started, plan.resolutions, plan.answered
        await self.workflow.run(ctx, self.message, resumed=True)
        return self.events[before:]


async def start(workflow: Workflow, message: Any = "go") -> Leg:
    leg = Leg(workflow, message)
    await workflow.run(context(leg.events), message)
    return leg


def answer(leg: Leg, **entry: Any) -> Resolution:
    """The client's answer, checked against the stored requirement, as the server does."""
    req = leg.requirement()
    return resolve(req, [{"step_id": req.step_id, **entry}])


def active_requirement(leg: Leg) -> StepRequirement:
    return leg.requirement()
