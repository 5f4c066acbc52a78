"""Loop: draft and review until the review is happy, at most five times.

    python cookbook/workflows/loop.py

After each iteration ``end_condition`` gets that iteration's outputs; true
ends the loop. Each iteration starts from the previous one's last output.
"""

from runstream import Loop, StepInput, StepOutput, Workflow


def draft(step_input: StepInput) -> str:
    previous = step_input.previous_step_content  # None in the first iteration
    if previous is None:
        return f"Draft about {step_input.input}"
    return str(previous).removesuffix(" (needs work)") + " + more detail"


def review(step_input: StepInput) -> str:
    text = str(step_input.previous_step_content)
    return text if text.count("detail") >= 2 else f"{text} (needs work)"


def good_enough(outputs: list[StepOutput]) -> bool:
    return "needs work" not in str(outputs[-1].content)


EXAMPLE = "coral reefs"

workflow = Workflow(
    id="loop-refine",
    name="Loop Refine",
    description="Draft, review, repeat until the review passes.",
    steps=[Loop([draft, review], end_condition=good_enough, max_iterations=5, name="Refine")],
)

if __name__ == "__main__":
    from _show import show

    show(workflow, EXAMPLE)
