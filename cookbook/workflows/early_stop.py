"""Early stop: a step returns ``StepOutput(stop=True)`` and the run ends there.

    python cookbook/workflows/early_stop.py

The run still ends normally, with ``WorkflowCompleted`` (``stopped_early``:
true) carrying what was produced so far; a stop deep inside a loop, condition
or group ends them all.
"""

from runstream import Loop, StepInput, StepOutput, Workflow


def check_input(step_input: StepInput) -> StepOutput:
    text = str(step_input.input)
    if not text.strip():
        return StepOutput(content="Nothing to do: the input is empty", stop=True)
    return StepOutput(content=text)


def count_down(step_input: StepInput) -> StepOutput:
    n = int(step_input.previous_step_content) - 1
    return StepOutput(content=n, stop=n <= 0)


def never(step_input: StepInput) -> str:
    return "not reached: the loop stopped the run"


EXAMPLE = "3"

workflow = Workflow(
    id="early-stop",
    name="Early Stop",
    description="Count down to zero and stop the whole run there.",
    steps=[check_input, Loop(count_down, max_iterations=10, name="Count Down"), never],
)

if __name__ == "__main__":
    from _show import show

    show(workflow, EXAMPLE)
    show(workflow, " ")
