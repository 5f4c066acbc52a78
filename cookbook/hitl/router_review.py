"""Output review on a ``Router``: a person reviews what the chosen route produced (``StepOutputReview``).

    python cookbook/hitl/router_review.py

The selector routes the ticket by a keyword; a person reviews the reply before it is
sent. Rejecting it (``on_reject="retry"``) asks for a route again (``RouterPaused``,
with ``retry_count`` and the feedback), and the route picked runs anew with
``additional_data["rejection_feedback"]``; approving keeps the output (or the
``edited_output``). Past ``max_retries`` rejections the run is cancelled.
``runstream continue RUN --reject --feedback "..."``, ``--choose Support``, ``--confirm``.
"""

from runstream import HumanReview, Router, Step, StepInput, Workflow


def triage(step_input: StepInput) -> str:
    return "Billing" if "charged" in str(step_input.input) else "Support"


def billing(step_input: StepInput) -> str:
    return f"Billing: a refund for '{step_input.input}' is on its way"


def support(step_input: StepInput) -> str:
    feedback = step_input.additional_data.get("rejection_feedback")
    return f"Support: we are looking into '{step_input.input}'" + (f" ({feedback})" if feedback else "")


def send(step_input: StepInput) -> str:
    return f"sent: {step_input.previous_step_content}"


EXAMPLE = "I was charged twice because the app crashed"
ANSWERS = [{"confirmed": False, "rejection_feedback": "the crash is the real problem"},
           {"selected_choices": ["Support"]},
           {"confirmed": True}]

workflow = Workflow(
    id="hitl-router-review",
    name="HITL Router Review",
    description="A ticket is routed by keyword; a person reviews the reply and can send it to another team.",
    steps=[
        Router(triage, name="Triage", choices=[Step(name="Billing", executor=billing), Step(name="Support", executor=support)],
               human_review=HumanReview(requires_output_review=True, on_reject="retry", max_retries=2)),
        send,
    ],
)

if __name__ == "__main__":
    from _answer import show

    show(workflow, EXAMPLE, ANSWERS)
