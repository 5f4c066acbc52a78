"""The benchmark workflows served by runstream: ``token-storm`` and the content-creation workflow.

    python bench/serve_runstream.py --port 8002 --model-url http://127.0.0.1:8001/v1 --db /tmp/b.db
"""

from __future__ import annotations

import argparse

from runstream import Agent, Limits, OpenAIChat, Server, Step, Workflow


def workflows(model_url: str) -> list[Workflow]:
    def agent(name: str) -> Agent:
        return Agent(name=name, model=OpenAIChat(id="bench", base_url=model_url, api_key="bench"))

    return [
        Workflow(id="token-storm", name="Token Storm", steps=[Step(name="Storm Step", agent=agent("Storm Agent"))]),
        Workflow(
            id="content-creation-workflow",
            name="Content Creation Workflow",
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
    parser.add_argument("--asgi", action="store_true", help="serve Server.app as any ASGI app, without runstream's transport")
    args = parser.parse_args()
    # the benchmark's thousands of clients share one address and idle on purpose: no per-client limits
    unlimited = Limits(runs_per_minute=None, max_runs_per_user=None, max_concurrent_runs=None, max_connections_per_client=None,
                       max_subscriptions=None, idle_timeout=None, max_lag=None)
    server = Server(workflows=workflows(args.model_url), database_url=f"sqlite:///{args.db}", limits=unlimited)
    transport = {"ws": "websockets-sansio"} if args.asgi else {}
    server.serve(host="127.0.0.1", port=args.port, log_level="warning", backlog=16384, **transport)
