"""User input against a schema: the step pauses until a person fills in its fields.

    python cookbook/hitl/user_input.py

The server checks the answer against the stored schema (required fields, types,
allowed values): ``runstream continue RUN --input env=staging --input replicas=3``.
The step reads ``step_input.additional_data["user_input"]``.
"""

from runstream import HumanReview, Step, StepInput, UserInputField, Workflow


def scale(step_input: StepInput) -> str:
    values = step_input.additional_data["user_input"]
    return f"{step_input.input}: {values['replicas']} replicas on {values['env']}"


EXAMPLE = "billing-service"
ANSWERS = [{"user_input": {"env": "staging", "replicas": 3}}]

workflow = Workflow(
    id="hitl-user-input",
    name="HITL User Input",
    description="Scales a service where and how a person says.",
    steps=[
        Step(name="Scale", executor=scale, human_review=HumanReview(
            requires_user_input=True, user_input_message="Where, and how many?",
            user_input_schema=[
                UserInputField("env", description="target environment", allowed_values=["staging", "production"]),
                UserInputField("replicas", field_type="int"),
            ])),
    ],
)

if __name__ == "__main__":
    from _answer import show

    show(workflow, EXAMPLE, ANSWERS)
