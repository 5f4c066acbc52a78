"""The workflow engine: definitions in, events out. Knows nothing of sockets or storage."""

from runstream.engine.context import RunContext, StepScope
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.step import Step, StepBase, as_step
from runstream.engine.workflow import Workflow

__all__ = ["RunContext", "Step", "StepBase", "StepInput", "StepOutput", "StepScope", "Workflow", "as_step"]
