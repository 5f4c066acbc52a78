"""Pause on a step's error (``on_error="pause"``, ``StepError``): a person decides to retry or skip.

    python cookbook/hitl/error_pause.py

``runstream continue RUN --retry`` (or ``--skip``); over the wire this is
``error_requirements: [{"step_id": ..., "decision": "retry"}]``, which AgentOS cannot take.
"""

from runstream import HumanReview, Step, StepInput, Workflow

ATTEMPTS: dict[str, int] = {}


def fetch(step_input: StepInput) -> str:
    key = str(step_input.input)
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] == 1:
        raise ConnectionError("the rates service timed out")
    return f"rates for {key}"


EXAMPLE = "EUR/USD"
ANSWERS = [{"decision": "retry"}]

workflow = Workflow(
    id="hitl-error-pause",
    name="HITL Error Pause",
    description="A flaky fetch; a person decides what to do when it fails.",
    steps=[Step(name="Fetch", executor=fetch, human_review=HumanReview(on_error="pause"))],
)

if __name__ == "__main__":
    from _answer import show

    show(workflow, EXAMPLE, ANSWERS)
