"""What a step receives and what it produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from runstream.engine.serialize import to_jsonable

__all__ = ["StepInput", "StepOutput"]


@dataclass
class StepOutput:
    """A step's result. ``stop=True`` ends the workflow early, as completed.

    A composite step (parallel, loop, ...) lists its children's outputs in
    ``steps``, so later steps can look each of them up by name.
    """

    content: Any = None
    step_name: str | None = None
    success: bool = True
    error: str | None = None
    stop: bool = False
    steps: list["StepOutput"] = field(default_factory=list)


@dataclass
class StepInput:
    """The run's input, the previous step's content and every earlier output by name."""

    input: Any = None
    previous_step_content: Any = None
    previous_step_outputs: dict[str, StepOutput] = field(default_factory=dict)
    additional_data: dict[str, Any] = field(default_factory=dict)
    session_state: dict[str, Any] = field(default_factory=dict)

    def get_step_output(self, name: str) -> StepOutput | None:
        return self.previous_step_outputs.get(name)

    def get_step_content(self, name: str) -> Any:
        output = self.previous_step_outputs.get(name)
        return output.content if output else None

    def message_text(self) -> str:
        """The text an agent is asked: the previous content, else the run's input."""
        source = self.previous_step_content if self.previous_step_content is not None else self.input
        return source if isinstance(source, str) else _to_text(source)

    def next(self, output: StepOutput) -> "StepInput":
        """The input of the step that follows one that produced ``output``."""
        outputs = dict(self.previous_step_outputs)
        _register(outputs, output)
        return StepInput(
            input=self.input,
            previous_step_content=output.content,
            previous_step_outputs=outputs,
            additional_data=self.additional_data,
            session_state=self.session_state,
        )


def _register(outputs: dict[str, StepOutput], output: StepOutput) -> None:
    """Index an output and, depth first, its children's by step name (the outer one wins)."""
    for child in output.steps:
        _register(outputs, child)
    if output.step_name:
        outputs[output.step_name] = output


def _to_text(value: Any) -> str:
    return orjson.dumps(to_jsonable(value)).decode()
