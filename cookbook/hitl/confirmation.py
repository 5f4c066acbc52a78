"""Confirmation before a step: the run pauses (``StepPaused``) until a person approves.

    python cookbook/hitl/confirmation.py

With the demo server: ``runstream run hitl-confirmation "release 4.0"`` asks at the
terminal; or ``runstream continue RUN --confirm`` (``--reject`` cancels the run here:
``on_reject="cancel"``).
"""

from runstream import HumanReview, Step, StepInput, Workflow


def build(step_input: StepInput) -> str:
    return f"build of {step_input.input} ready"


def deploy(step_input: StepInput) -> str:
    return f"deployed: {step_input.previous_step_content}"


EXAMPLE = "release 4.0"
ANSWERS = [{"confirmed": True}]

workflow = Workflow(
    id="hitl-confirmation",
    name="HITL Confirmation",
    description="Builds, then deploys once a person confirms.",
    steps=[
        build,
        Step(name="Deploy", executor=deploy, human_review=HumanReview(
            requires_confirmation=True, confirmation_message="Deploy to production?", on_reject="cancel")),
    ],
)

if __name__ == "__main__":
    from _answer import show

    show(workflow, EXAMPLE, ANSWERS)
