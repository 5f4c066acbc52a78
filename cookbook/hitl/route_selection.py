"""Route selection: a ``Router`` with no selector asks a person which route to take (``RouterPaused``).

    python cookbook/hitl/route_selection.py

``runstream continue RUN --choose Billing``; a name that is not a route is refused.
"""

from runstream import HumanReview, Router, Step, StepInput, Workflow


def billing(step_input: StepInput) -> str:
    return f"billing handles: {step_input.input}"


def support(step_input: StepInput) -> str:
    return f"support handles: {step_input.input}"


EXAMPLE = "I was charged twice"
ANSWERS = [{"selected_choices": ["Billing"]}]

workflow = Workflow(
    id="hitl-route-selection",
    name="HITL Route Selection",
    description="A person triages the ticket to a team.",
    steps=[
        Router(name="Triage", choices=[Step(name="Billing", executor=billing), Step(name="Support", executor=support)],
               human_review=HumanReview(requires_user_input=True)),
    ],
)

if __name__ == "__main__":
    from _answer import show

    show(workflow, EXAMPLE, ANSWERS)
