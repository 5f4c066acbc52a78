"""The demo server: a content-creation workflow on port 7777.

    python cookbook/agent_os/workflow/basic_workflow.py

Two agent steps (research, then content planning) stream their answers token
by token. Without ``OPENAI_API_KEY`` they run on the offline ``DemoModel``
(about 15 seconds and some 200 events a run); with it, on ``OpenAIChat``.
Runs are kept in ``data/runstream.db`` next to the repository root unless
``RUNSTREAM_DATABASE_URL`` says otherwise.
"""

import os
from pathlib import Path

from runstream import Agent, DemoModel, OpenAIChat, Server, Step, Workflow

DATA = Path(__file__).resolve().parents[3] / "data"


def model():
    if os.environ.get("OPENAI_API_KEY"):
        return OpenAIChat()
    return DemoModel(pace=float(os.environ.get("RUNSTREAM_DEMO_PACE", "0.085")), tokens=85)


research_agent = Agent(
    name="Research Agent",
    model=model(),
    instructions="Research the topic: gather the key facts, trends and open questions.",
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
    workflows=[content_creation_workflow],
    database_url=os.environ.get("RUNSTREAM_DATABASE_URL") or f"sqlite:///{DATA / 'runstream.db'}",
)
app = server.app

if __name__ == "__main__":
    server.serve(port=int(os.environ.get("PORT", "7777")))
