"""``@pause`` on a function executor, nested inside a ``Steps`` group in a ``Loop``.

    python cookbook/hitl/pause_decorator.py

The same as a ``HumanReview`` on the function's ``Step``; each iteration asks again.
"""

from runstream import Loop, StepInput, Steps, Workflow, pause


def gather(step_input: StepInput) -> str:
    return f"batch of {step_input.input}"


@pause(requires_confirmation=True, confirmation_message="Send this batch?")
def send(step_input: StepInput) -> str:
    return f"sent {step_input.previous_step_content}"


EXAMPLE = "invoices"
ANSWERS = [{"confirmed": True}, {"confirmed": True}]

workflow = Workflow(
    id="hitl-pause-decorator",
    name="HITL Pause Decorator",
    description="Two rounds of gather-then-send, each send confirmed by a person.",
    steps=[Loop([Steps("Round", [gather, send])], max_iterations=2, name="Rounds")],
)

if __name__ == "__main__":
    from _answer import show

    show(workflow, EXAMPLE, ANSWERS)
