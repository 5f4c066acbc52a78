"""Condition: take one branch or the other, decided when the run gets there.

    python cookbook/workflows/condition.py

The evaluator (a bool, or a sync or async function of the ``StepInput``)
decides; ``ConditionExecutionStarted/Completed`` carry ``condition_result``.
"""

from runstream import Condition, StepInput, Workflow


def is_technical(step_input: StepInput) -> bool:
    return any(word in str(step_input.input).lower() for word in ("api", "database", "protocol"))


def deep_dive(step_input: StepInput) -> str:
    return f"A technical deep dive into {step_input.input}"


def overview(step_input: StepInput) -> str:
    return f"A friendly overview of {step_input.input}"


def publish(step_input: StepInput) -> str:
    return f"Published: {step_input.previous_step_content}"


EXAMPLE = "the WebSocket protocol"

workflow = Workflow(
    id="condition-article",
    name="Condition Article",
    description="A deep dive for technical topics, an overview for the rest.",
    steps=[Condition(is_technical, [deep_dive], else_steps=[overview], name="Technical?"), publish],
)

if __name__ == "__main__":
    from _show import show

    show(workflow, EXAMPLE)
    show(workflow, "gardening")
