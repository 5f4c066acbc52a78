"""runstream: a server for long-running AI workflows.

Start a run, leave, reconnect with the last ``event_index`` seen, catch up
with no gap, and replay a finished run from event 0, over WebSocket and SSE.
"""

from runstream.agents import Agent
from runstream.engine import RunContext, Step, StepBase, StepInput, StepOutput, StepScope, Workflow
from runstream.errors import (
    InvalidInput,
    ModelError,
    ProtocolError,
    RunNotActive,
    RunstreamError,
    StepFailed,
    UnknownRun,
    UnknownWorkflow,
)
from runstream.events import StoredEvent
from runstream.fanout import LocalHub
from runstream.log import RunRecord, RunStatus, SQLiteLog, open_log
from runstream.models import DemoModel, OpenAIChat, Usage
from runstream.runs import RunManager
from runstream.server import Server

__all__ = [
    "Agent",
    "DemoModel",
    "InvalidInput",
    "LocalHub",
    "ModelError",
    "OpenAIChat",
    "ProtocolError",
    "RunContext",
    "RunManager",
    "RunNotActive",
    "RunRecord",
    "RunStatus",
    "RunstreamError",
    "SQLiteLog",
    "Server",
    "Step",
    "StepBase",
    "StepFailed",
    "StepInput",
    "StepOutput",
    "StepScope",
    "StoredEvent",
    "UnknownRun",
    "UnknownWorkflow",
    "Usage",
    "Workflow",
    "open_log",
]

__version__ = "0.1.0"
