"""The same benchmark workflows served by Agno's AgentOS (run with bench/.venv-agno's python).

    bench/.venv-agno/bin/python bench/serve_agno.py --port 8003 --model-url http://127.0.0.1:8001/v1 --db /tmp/a.db
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("AGNO_TELEMETRY", "false")

import uvicorn
from agno.agent import Agent
from agno.db.sqlite import SqliteDb
from agno.models.openai import OpenAILike
from agno.os import AgentOS
from agno.workflow.step import Step
from agno.workflow.workflow import Workflow


def workflows(model_url: str, db: SqliteDb) -> list[Workflow]:
    def agent(name: str) -> Agent:
        return Agent(name=name, model=OpenAILike(id="bench", base_url=model_url, api_key="bench"), telemetry=False)

    return [
        Workflow(
            id="token-storm", name="Token Storm", db=db, telemetry=False,
            steps=[Step(name="Storm Step", agent=agent("Storm Agent"))],
        ),
        Workflow(
            id="content-creation-workflow", name="Content Creation Workflow", db=db, telemetry=False,
            steps=[
                Step(name="Research Step", agent=agent("Research Agent")),
                Step(name="Content Planning Step", agent=agent("Content Planner")),
            ],
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-url", required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    db = SqliteDb(db_file=args.db)
    agent_os = AgentOS(workflows=workflows(args.model_url, db), db=db, telemetry=False)
    uvicorn.run(agent_os.get_app(), host="127.0.0.1", port=args.port, log_level="warning", backlog=16384)
