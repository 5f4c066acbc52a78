"""Pause on a step's error (``on_error="pause"``, ``StepError``): a person decides to retry or skip.

    python cookbook/hitl/error_pause.py

``runstream continue RUN --retry`` (or ``--skip``); over the wire this is
``error_requirements: [{"step_id": ..., "decision": "retry"}]``, which AgentOS cannot take.
The fetch fails on its first try in each session (every run without a ``session_id`` has
a session of its own), so every run of the demo pauses, and a retry succeeds: the session
state that remembers the try is saved with the pause and is there for the retry.
"""

from runstream import HumanReview, Step, StepInput, Workflow


def fetch(step_input: StepInput) -> str:
    if not step_input.session_state.get("rates_tried"):
        step_input.session_state["rates_tried"] = True
        raise ConnectionError("the rates service timed out")
    return f"rates for {step_input.input}"


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
