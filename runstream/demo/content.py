"""The demo's content-creation workflow: research a topic (with a tool call), then plan content.

Without ``OPENAI_API_KEY`` its agents run on the offline ``DemoModel`` (about
15 seconds and some 180 events a run, ``RUNSTREAM_DEMO_PACE`` seconds per
token); with it, on ``OpenAIChat``.
"""

from __future__ import annotations

import os

from runstream.agents import Agent
from runstream.engine import Step, Workflow
from runstream.models import DemoModel, Model, OpenAIChat

__all__ = ["NOTES", "content_creation_workflow", "demo_model", "search_notes"]

NOTES = {
    "audience": "Readers skim first: a strong headline and a short summary decide whether they stay.",
    "trends": "Short practical guides and worked examples outperform long opinion pieces.",
    "risks": "Unchecked claims cost trust; every figure needs a source.",
}


def demo_model() -> Model:
    """``OpenAIChat`` when ``OPENAI_API_KEY`` is set, else the offline ``DemoModel``."""
    if os.environ.get("OPENAI_API_KEY"):
        return OpenAIChat()
    return DemoModel(pace=float(os.environ.get("RUNSTREAM_DEMO_PACE", "0.085")), tokens=85)


def search_notes(query: str, limit: int = 2) -> list[str]:
    """Search the team's research notes (offline and deterministic, for the demo).

    Args:
        query: The topic to search for.
        limit: How many notes to return.
    """
    ranked = sorted(NOTES.items(), key=lambda item: (item[0] not in query.lower(), item[0]))
    return [note for _, note in ranked[:limit]]


research_agent = Agent(
    name="Research Agent",
    model=demo_model(),
    instructions="Research the topic: call search_notes first, then gather the key facts, trends and open questions.",
    tools=[search_notes],
)
content_planner = Agent(
    name="Content Planner",
    model=demo_model(),
    instructions="Turn the research into a content plan: audience, angle, outline and three headlines.",
)

content_creation_workflow = Workflow(
    id="content-creation-workflow",
    name="Content Creation Workflow",
    description="Research a topic, then plan content about it.",
    steps=[
        Step(name="Research Step", agent=research_agent),
        Step(name="Content Planning Step", agent=content_planner),
    ],
)
