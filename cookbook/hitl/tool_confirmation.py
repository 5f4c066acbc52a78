"""An agent's tool call that needs a person's confirmation (``StepExecutorPaused``).

    python cookbook/hitl/tool_confirmation.py

The agent's conversation is stored with the pause; the continue runs the approved call
(or tells the model it was rejected) and the same agent run goes on.
``runstream continue RUN --confirm`` (or ``--reject --feedback "not today"``).
"""

from runstream import Agent, DemoModel, Step, Workflow, tool


@tool(requires_confirmation=True)
def deploy(env: str) -> str:
    """Deploy the release.

    Args:
        env: Where to deploy.
    """
    return f"deployed to {env}"


EXAMPLE = "production"
ANSWERS = [{"confirmed": True}]

workflow = Workflow(
    id="hitl-tool-confirmation",
    name="HITL Tool Confirmation",
    description="An agent that deploys, once a person allows the call.",
    steps=[Step(name="Ship", agent=Agent(name="Deployer", model=DemoModel(pace=0, tokens=60),
                                         instructions="Use deploy to ship the release.", tools=[deploy]))],
)

if __name__ == "__main__":
    from _answer import show

    show(workflow, EXAMPLE, ANSWERS)
