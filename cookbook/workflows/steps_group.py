"""Steps: a named group of steps, reusable and nestable as one step.

    python cookbook/workflows/steps_group.py

``StepsExecutionStarted/Completed`` frame the group's events; its children
carry the group's id as ``parent_step_id`` and one more ``depth``.
"""

from runstream import Agent, DemoModel, Step, StepInput, Steps, Workflow


def outline(step_input: StepInput) -> str:
    return f"Outline: intro, three points and a close on {step_input.input}"


def headline(step_input: StepInput) -> str:
    return f"Headline for: {str(step_input.previous_step_content)[:60]}"


research = Steps(
    "Research",
    [Step(name="Gather", agent=Agent(name="Researcher", model=DemoModel(tokens=20))), outline],
)

EXAMPLE = "urban beekeeping"

workflow = Workflow(
    id="steps-group",
    name="Steps Group",
    description="A research group (agent, outline), then a headline.",
    steps=[research, headline],
)

if __name__ == "__main__":
    from _show import show

    show(workflow, EXAMPLE)
