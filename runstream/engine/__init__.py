"""The workflow engine: definitions in, events out. Knows nothing of sockets or storage."""

from runstream.engine.condition import Condition
from runstream.engine.context import RunContext, StepScope
from runstream.engine.group import Steps
from runstream.engine.hitl import HumanReview, OnError, OnReject, OnTimeout, StepRequirement, UserInputField, pause
from runstream.engine.io import StepInput, StepOutput
from runstream.engine.loop import Loop
from runstream.engine.parallel import Parallel
from runstream.engine.router import Router
from runstream.engine.sink import CallbackSink, EventSink
from runstream.engine.step import Step, StepBase, as_step
from runstream.engine.workflow import Workflow

__all__ = [
    "CallbackSink",
    "Condition",
    "EventSink",
    "HumanReview",
    "Loop",
    "OnError",
    "OnReject",
    "OnTimeout",
    "Parallel",
    "Router",
    "RunContext",
    "Step",
    "StepBase",
    "StepInput",
    "StepOutput",
    "StepRequirement",
    "StepScope",
    "Steps",
    "UserInputField",
    "Workflow",
    "as_step",
    "pause",
]
