"""Router: pick the step (or steps) to run among fixed choices.

    python cookbook/workflows/router.py

The selector (sync or async) returns a choice, its name, or a list of them;
``RouterExecutionStarted/Completed`` carry ``selected_steps``.
"""

from runstream import Agent, DemoModel, Router, StepInput, Workflow


def code_search(step_input: StepInput) -> str:
    return f"Code examples for {step_input.input}"


writer = Agent(name="Writer", model=DemoModel(tokens=25), instructions="Explain the topic plainly.")


def choose(step_input: StepInput) -> list[str]:
    topic = str(step_input.input).lower()
    return ["code_search", "Writer"] if "python" in topic else ["Writer"]


EXAMPLE = "python generators"

workflow = Workflow(
    id="router-explain",
    name="Router Explain",
    description="Code examples first for programming topics, then a plain explanation.",
    steps=[Router(choose, [code_search, writer], name="Pick")],
)

if __name__ == "__main__":
    from _show import show

    show(workflow, EXAMPLE)
