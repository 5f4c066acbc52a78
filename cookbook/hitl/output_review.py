"""Output review after a step (``StepOutputReview``): approve it, edit it, or reject it with feedback.

    python cookbook/hitl/output_review.py

Here the first draft is rejected (``on_reject="retry"``): the step runs again with
``additional_data["rejection_feedback"]``; the second is approved with an edit, which
the next step receives. An approved draft is kept as reviewed: the step does not run again.
``runstream continue RUN --reject --feedback "shorter"``, ``--confirm --edit "..."``.
"""

from runstream import HumanReview, Step, StepInput, Workflow


def draft(step_input: StepInput) -> str:
    feedback = step_input.additional_data.get("rejection_feedback")
    return f"A draft about {step_input.input}" + (f" (revised: {feedback})" if feedback else ", rather long")


def publish(step_input: StepInput) -> str:
    return f"published: {step_input.previous_step_content}"


EXAMPLE = "tides"
ANSWERS = [{"confirmed": False, "rejection_feedback": "shorter"},
           {"confirmed": True, "edited_output": "Tides, in one line."}]

workflow = Workflow(
    id="hitl-output-review",
    name="HITL Output Review",
    description="A person reviews the draft before it is published.",
    steps=[
        Step(name="Draft", executor=draft, human_review=HumanReview(requires_output_review=True, on_reject="retry")),
        publish,
    ],
)

if __name__ == "__main__":
    from _answer import show

    show(workflow, EXAMPLE, ANSWERS)
