"""Iteration review on a ``Loop``: after each iteration a person approves (the loop ends) or asks for another.

    python cookbook/hitl/iteration_review.py
"""

from runstream import HumanReview, Loop, StepInput, Workflow


def improve(step_input: StepInput) -> str:
    previous = step_input.previous_step_content
    return f"{previous}+" if isinstance(previous, str) else f"v1 of {step_input.input}"


EXAMPLE = "a slogan"
ANSWERS = [{"confirmed": False, "rejection_feedback": "punchier"}, {"confirmed": True}]

workflow = Workflow(
    id="hitl-iteration-review",
    name="HITL Iteration Review",
    description="Improves a text until a person is happy with it.",
    steps=[Loop([improve], max_iterations=5, name="Improve",
                human_review=HumanReview(requires_iteration_review=True))],
)

if __name__ == "__main__":
    from _answer import show

    show(workflow, EXAMPLE, ANSWERS)
