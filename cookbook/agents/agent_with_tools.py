"""An agent with tools in a workflow: a trip planner that checks the weather and converts currency.

    python cookbook/agents/agent_with_tools.py          # serves on 127.0.0.1:7778

Its runs go to ``data/agent_with_tools.db`` at the repository root (its own
file: two servers never share one), unless ``RUNSTREAM_DATABASE_URL`` is set.

Without ``OPENAI_API_KEY`` the agent runs on the offline ``DemoModel``, which
calls every tool its instructions name and then answers with the results;
with it (and optionally ``OPENAI_BASE_URL`` and ``OPENAI_MODEL``, e.g. a local
Ollama at ``http://localhost:11434/v1``), on ``OpenAIChat``, which decides for
itself. Start a run from any AgentOS client, or:

    curl -N -X POST localhost:7778/workflows/trip-planner/runs -F message="Lisbon"

Each tool call streams as ``ToolCallStarted`` / ``ToolCallCompleted`` before the
answer's ``RunContent`` tokens.
"""

import asyncio
import os
from pathlib import Path
from typing import Literal

from runstream import Agent, DemoModel, OpenAIChat, Server, Step, StepInput, Workflow

FORECASTS = {"lisbon": (24, "sunny"), "oslo": (6, "rain"), "tokyo": (18, "cloudy")}
RATES = {("EUR", "USD"): 1.08, ("EUR", "JPY"): 162.0, ("EUR", "NOK"): 11.6}


async def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Tomorrow's forecast for a city.

    Args:
        city: The city's name, e.g. "Lisbon".
        unit: The temperature unit.
    """
    await asyncio.sleep(0.05)  # stands for a real API call: async tools run concurrently
    degrees, sky = FORECASTS.get(city.strip().lower(), (15, "unknown"))
    if unit == "fahrenheit":
        degrees = round(degrees * 9 / 5 + 32)
    return f"{city}: {degrees}°{'F' if unit == 'fahrenheit' else 'C'}, {sky}"


def convert_currency(amount: float, to: str = "USD") -> float:
    """Convert an amount in euros into another currency.

    Args:
        amount: How many euros.
        to: The ISO code of the target currency.
    """
    return round(amount * RATES.get(("EUR", to.upper()), 1.0), 2)


def model():
    if os.environ.get("OPENAI_API_KEY"):
        return OpenAIChat()
    return DemoModel(tokens=60)


planner = Agent(
    name="Trip Planner",
    model=model(),
    instructions=(
        "Plan a one-day trip to the city the user names. Call get_weather for the city first, "
        "then suggest what to do, and use convert_currency for any prices."
    ),
    tools=[get_weather, convert_currency],
    max_tool_calls=6,
)


def packing_list(step_input: StepInput) -> str:
    """A plain function step after the agent: it reads the agent's answer."""
    plan = str(step_input.previous_step_content or "")
    items = ["umbrella"] if "rain" in plan else ["sunglasses", "water"]
    return "Pack: " + ", ".join(items)


trip_workflow = Workflow(
    id="trip-planner",
    name="Trip Planner",
    description="An agent with tools plans a day out; a function step writes the packing list.",
    steps=[Step(name="Plan", agent=planner), Step(name="Pack", executor=packing_list)],
)

if __name__ == "__main__":
    data = Path(__file__).resolve().parents[2] / "data"
    database = os.environ.get("RUNSTREAM_DATABASE_URL") or f"sqlite:///{data / 'agent_with_tools.db'}"
    port = os.environ.get("RUNSTREAM_PORT") or os.environ.get("PORT") or "7778"
    Server(workflows=[trip_workflow], database_url=database).serve(port=int(port))
