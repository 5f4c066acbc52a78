"""Session state: a dict shared by the steps of a run and kept across the runs of a session.

    python cookbook/workflows/session_state.py

``step_input.session_state`` is loaded from the session store when a run
starts and saved when it ends; start runs with the same ``session_id`` to
carry it over (here two runs share one dict in-process to show the idea).
"""

from runstream import StepInput, Workflow


def remember(step_input: StepInput) -> str:
    notes = step_input.session_state.setdefault("notes", [])
    notes.append(str(step_input.input))
    return f"Noted ({len(notes)} so far)"


def recall(step_input: StepInput) -> str:
    return "Everything so far: " + "; ".join(step_input.session_state["notes"])


EXAMPLE = "buy more coffee"

workflow = Workflow(
    id="session-notes",
    name="Session Notes",
    description="Keeps a list of notes across the runs of one session.",
    steps=[remember, recall],
)

if __name__ == "__main__":
    from _show import show

    state: dict = {}
    show(workflow, EXAMPLE, state)
    show(workflow, "call the plumber", state)
