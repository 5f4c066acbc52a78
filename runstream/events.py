"""Event names and the two wire framings of a run event.

A run event travels as the JSON text it was serialized to once, when it was
appended to the log; transports only wrap that text in a frame.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "StoredEvent",
    "TERMINAL_EVENTS",
    "ws_frame",
    "sse_frame",
    "WORKFLOW_STARTED",
    "WORKFLOW_COMPLETED",
    "WORKFLOW_ERROR",
    "WORKFLOW_CANCELLED",
    "WORKFLOW_RESUMED",
    "STEP_STARTED",
    "STEP_OUTPUT",
    "STEP_COMPLETED",
    "RUN_STARTED",
    "RUN_CONTENT",
    "RUN_COMPLETED",
    "TOOL_CALL_STARTED",
    "TOOL_CALL_COMPLETED",
]

WORKFLOW_STARTED = "WorkflowStarted"
WORKFLOW_COMPLETED = "WorkflowCompleted"
WORKFLOW_ERROR = "WorkflowError"
WORKFLOW_CANCELLED = "WorkflowCancelled"
WORKFLOW_RESUMED = "WorkflowResumed"
STEP_STARTED = "StepStarted"
STEP_OUTPUT = "StepOutput"
STEP_COMPLETED = "StepCompleted"
RUN_STARTED = "RunStarted"
RUN_CONTENT = "RunContent"
RUN_COMPLETED = "RunCompleted"
TOOL_CALL_STARTED = "ToolCallStarted"
TOOL_CALL_COMPLETED = "ToolCallCompleted"

TERMINAL_EVENTS = frozenset({WORKFLOW_COMPLETED, WORKFLOW_ERROR, WORKFLOW_CANCELLED})


class StoredEvent(NamedTuple):
    """One event of a run's log: its index, its name and its JSON text."""

    index: int
    name: str
    data: str

    @property
    def terminal(self) -> bool:
        return self.name in TERMINAL_EVENTS


def ws_frame(event: StoredEvent) -> str:
    """The WebSocket framing AgentOS clients parse: SSE text in one frame."""
    return f"event: {event.name}\ndata: {event.data}\n\n"


def sse_frame(event: StoredEvent) -> str:
    """An SSE message with ``id:`` so that ``EventSource`` resumes by itself."""
    return f"id: {event.index}\nevent: {event.name}\ndata: {event.data}\n\n"
