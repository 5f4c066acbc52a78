"""runstream: a server for long-running AI workflows.

Start a run, leave, reconnect with the last ``event_index`` seen, catch up
with no gap, and replay a finished run from event 0, over WebSocket and SSE.
"""

import importlib
from typing import TYPE_CHECKING, Any

from runstream.agents import Agent, Tool, tool
from runstream.client import Client, Event, ServerError, SyncClient
from runstream.engine import (
    CallbackSink,
    Condition,
    EventSink,
    HumanReview,
    Loop,
    OnError,
    OnReject,
    OnTimeout,
    Parallel,
    Router,
    RunContext,
    Step,
    StepBase,
    StepInput,
    StepOutput,
    StepRequirement,
    StepScope,
    Steps,
    UserInputField,
    Workflow,
    as_step,
    pause,
)
from runstream.errors import (
    AmbiguousRunId,
    DatabaseInUse,
    Forbidden,
    InvalidContinue,
    InvalidInput,
    InvalidRequest,
    LimitExceeded,
    LogWriteFailed,
    MessageTooLarge,
    ModelError,
    ProtocolError,
    QueueFull,
    RunNotActive,
    RunNotPaused,
    RunstreamError,
    SessionActive,
    ShuttingDown,
    StepFailed,
    TokenExpired,
    Unauthorized,
    UnknownDatabase,
    UnknownRun,
    UnknownSession,
    UnknownWorkflow,
)
from runstream.events import StoredEvent
from runstream.fanout import LocalHub
from runstream.log import RunRecord, RunStatus, SQLiteLog, open_log
from runstream.log.retention import RetentionPolicy, apply_retention
from runstream.models import DemoModel, Model, OpenAIChat, ToolCall, ToolSpec, Usage
from runstream.runs import RunManager

if TYPE_CHECKING:
    from runstream.server import Server
    from runstream.server.auth import AuthConfig, Principal
    from runstream.server.limits import Limits

__all__ = [
    "Agent",
    "AmbiguousRunId",
    "AuthConfig",
    "CallbackSink",
    "Client",
    "Condition",
    "DatabaseInUse",
    "DemoModel",
    "Event",
    "EventSink",
    "Forbidden",
    "HumanReview",
    "InvalidContinue",
    "InvalidInput",
    "InvalidRequest",
    "LimitExceeded",
    "Limits",
    "LocalHub",
    "LogWriteFailed",
    "Loop",
    "MessageTooLarge",
    "Model",
    "ModelError",
    "OnError",
    "OnReject",
    "OnTimeout",
    "OpenAIChat",
    "Parallel",
    "PostgresLog",
    "Principal",
    "ProtocolError",
    "QueueFull",
    "RedisHub",
    "RetentionPolicy",
    "Router",
    "RunContext",
    "RunManager",
    "RunNotActive",
    "RunNotPaused",
    "RunRecord",
    "RunStatus",
    "RunstreamError",
    "SQLiteLog",
    "Server",
    "ServerError",
    "SessionActive",
    "ShuttingDown",
    "Step",
    "StepBase",
    "StepFailed",
    "StepInput",
    "StepOutput",
    "StepRequirement",
    "StepScope",
    "Steps",
    "StoredEvent",
    "SyncClient",
    "TokenExpired",
    "Tool",
    "ToolCall",
    "ToolSpec",
    "Unauthorized",
    "UnknownDatabase",
    "UnknownRun",
    "UnknownSession",
    "UnknownWorkflow",
    "Usage",
    "UserInputField",
    "Workflow",
    "apply_retention",
    "as_step",
    "open_log",
    "pause",
    "tool",
]

__version__ = "0.1.0"

_LAZY = {
    "PostgresLog": ("runstream.log.postgres", "asyncpg", "postgres"),
    "RedisHub": ("runstream.fanout.redis", "redis", "redis"),
    "Server": ("runstream.server", None, None),
    "AuthConfig": ("runstream.server.auth", None, None),
    "Principal": ("runstream.server.auth", None, None),
    "Limits": ("runstream.server.limits", None, None),
}
"""Names loaded on first use: backends whose dependency is an optional extra, and the server,
so that ``import runstream.client`` does not load FastAPI and uvicorn."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'runstream' has no attribute {name!r}")
    module, dependency, extra = _LAZY[name]
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if dependency is None or exc.name != dependency:
            raise
        raise ImportError(f"runstream.{name} needs {dependency}: pip install 'runstream[{extra}]'") from exc
    globals()[name] = value
    return value
