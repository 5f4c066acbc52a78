"""The public API is what ``runstream`` exports at its top level: pinned, so a change is deliberate."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import runstream

PUBLIC = {
    "Agent", "AmbiguousRunId", "AuthConfig", "CallbackSink", "Client", "Condition", "DatabaseInUse",
    "DemoModel", "Event", "EventSink", "Forbidden", "HumanReview", "InvalidContinue", "InvalidInput",
    "InvalidRequest", "LimitExceeded", "Limits", "LocalHub", "LogWriteFailed", "Loop", "MessageTooLarge",
    "Model", "ModelError", "OnError", "OnReject", "OnTimeout", "OpenAIChat", "Parallel", "PostgresLog",
    "Principal", "ProtocolError", "QueueFull", "RedisHub", "RetentionPolicy", "Router", "RunContext",
    "RunManager", "RunNotActive", "RunNotPaused", "RunRecord", "RunStatus", "RunstreamError", "SQLiteLog",
    "Server", "ServerError", "SessionActive", "ShuttingDown", "Step", "StepBase", "StepFailed", "StepInput",
    "StepOutput", "StepRequirement", "StepScope", "Steps", "StoredEvent", "SyncClient", "TokenExpired",
    "Tool", "ToolCall", "ToolSpec", "Unauthorized", "UnknownDatabase", "UnknownRun", "UnknownSession",
    "UnknownWorkflow", "Usage", "UserInputField", "Workflow", "apply_retention", "as_step", "open_log",
    "pause", "tool",
}  # fmt: skip


def test_top_level_exports_are_pinned_and_importable() -> None:
    assert set(runstream.__all__) == PUBLIC
    assert list(runstream.__all__) == sorted(runstream.__all__, key=str)
    for name in PUBLIC:
        assert getattr(runstream, name) is not None


def test_every_module_declares_what_it_exports() -> None:
    for info in pkgutil.walk_packages(runstream.__path__, "runstream."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{info.name} has no __all__"
        missing = [name for name in exported if not hasattr(module, name)]
        assert not missing, f"{info.name}.__all__ names what it does not define: {missing}"


def test_errors_share_one_root_and_carry_stable_codes() -> None:
    errors = [getattr(runstream, n) for n in PUBLIC if isinstance(getattr(runstream, n), type)]
    ours = [e for e in errors if issubclass(e, Exception) and e.__module__.startswith("runstream.errors")]
    assert ours and all(issubclass(e, runstream.RunstreamError) for e in ours)
    assert len({e.code for e in ours}) == len(ours)


def test_the_client_loads_no_server_framework() -> None:
    """A script that only talks to a server (``runstream.client``) need not load FastAPI or uvicorn."""
    probe = (
        "import sys, runstream.client, runstream; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'starlette', 'uvicorn'}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
    loaded = subprocess.run([sys.executable, "-c", "import sys, runstream; runstream.Server; print('fastapi' in sys.modules)"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert loaded.stdout.strip() == "True"  # and the server is still one attribute away
