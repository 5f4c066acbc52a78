"""Structured input and output: a pydantic input schema and steps that return models.

    python cookbook/workflows/structured_io.py

A message that does not match ``input_schema`` is refused before the run
starts (over WebSocket: ``{"event": "error", ...}``). Steps get the validated
model as ``step_input.input`` and may return models: events and the run's
output carry them as JSON.
"""

from pydantic import BaseModel, Field

from runstream import StepInput, Workflow


class TripRequest(BaseModel):
    city: str
    days: int = Field(ge=1, le=14)


class Itinerary(BaseModel):
    city: str
    plan: list[str]


def plan_trip(step_input: StepInput) -> Itinerary:
    request: TripRequest = step_input.input
    return Itinerary(city=request.city, plan=[f"Day {d}: explore {request.city}" for d in range(1, request.days + 1)])


def budget(step_input: StepInput) -> dict:
    itinerary: Itinerary = step_input.previous_step_content
    return {"city": itinerary.city, "days": len(itinerary.plan), "budget_eur": 120 * len(itinerary.plan)}


EXAMPLE = {"city": "Lisbon", "days": 3}

workflow = Workflow(
    id="structured-trip",
    name="Structured Trip",
    description="A typed trip request in, a typed itinerary and a budget out.",
    steps=[plan_trip, budget],
    input_schema=TripRequest,
)

if __name__ == "__main__":
    from _show import show

    show(workflow, EXAMPLE)
