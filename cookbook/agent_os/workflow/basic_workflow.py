"""The demo server: a content-creation workflow on port 7777.

    python cookbook/agent_os/workflow/basic_workflow.py

Two agent steps (research, then content planning) stream their answers token
by token; the Research Agent first calls its ``search_notes`` tool. Without
``OPENAI_API_KEY`` they run on the offline ``DemoModel`` (about 15 seconds and
some 180 events a run); with it, on ``OpenAIChat``.
Runs are kept in ``data/runstream.db`` next to the repository root unless
``RUNSTREAM_DATABASE_URL`` says otherwise.
"""

import os
import sys
from pathlib import Path

from runstream import Agent, DemoModel, OpenAIChat, Server, Step, Workflow

DATA = Path(__file__).resolve().parents[3] / "data"

sys.path.insert(0, str(DATA.parent))  # the repository root, for the step-kind examples below
from cookbook.workflows import (  # noqa: E402
    condition,
    early_stop,
    loop,
    parallel,
    router,
    session_state,
    steps_group,
    structured_io,
)

NOTES = {
    "audience": "Readers skim first: a strong headline and a short summary decide whether they stay.",
    "trends": "Short practical guides and worked examples outperform long opinion pieces.",
    "risks": "Unchecked claims cost trust; every figure needs a source.",
}


def model():
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
    model=model(),
    instructions="Research the topic: call search_notes first, then gather the key facts, trends and open questions.",
    tools=[search_notes],
)
content_planner = Agent(
    name="Content Planner",
    model=model(),
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

server = Server(
    workflows=[
        content_creation_workflow,
        *(m.workflow for m in (parallel, condition, loop, router, steps_group, early_stop, session_state, structured_io)),
    ],
    database_url=os.environ.get("RUNSTREAM_DATABASE_URL") or f"sqlite:///{DATA / 'runstream.db'}",
)
app = server.app

if __name__ == "__main__":
    server.serve(port=int(os.environ.get("PORT", "7777")))
