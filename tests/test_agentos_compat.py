"""AgentOS's own Python client (agno 3.1.10) works against runstream unchanged.

``tests/agentos_compat/client_checks.py`` runs in a virtual environment of its
own (``.venv-agno/``, built once and reused), so agno never becomes a
dependency of runstream. It drives real servers on ephemeral ports: one open,
one with a security key and one that takes JWTs (the same calls, with
``Authorization: Bearer <key or token>``).
Under CI a venv that cannot be built fails the test; elsewhere it skips.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from runstream import Server, Step, StepInput, Workflow
from runstream import events as ev
from runstream.server.auth import AuthConfig
from tests.conftest import IN_CI, ROOT, free_port, serve_in_thread
from tests.demo_process import demo_server
from tests.runkit import Valve, valve_workflow
from tests.waiting import wait_until

VENV = ROOT / ".venv-agno"
REQUIREMENTS = ["agno==3.1.10", "fastapi", "httpx"]
"""What the client needs: agno itself, plus fastapi, which ``agno.client`` imports."""
SCRIPT = ROOT / "tests" / "agentos_compat" / "client_checks.py"
EXTENSIONS = {ev.STEP_RETRY, ev.WORKFLOW_RESUMED, ev.WORKFLOW_QUEUED}
"""runstream's events that AgentOS has no name for (its client skips them: agno 3.1.10 raises
"Unknown workflow event type" for each, and its stream reader logs that and goes on)."""
NOT_WALKED = {ev.WORKFLOW_RESUMED, ev.WORKFLOW_QUEUED}
"""Events no run of the first test has: ``WorkflowResumed`` (a run's after a crash) and
``WorkflowQueued`` (a run's that waited for a slot) are walked by the second, on a demo server
killed with SIGKILL. The pause events are walked by ``check_continue``."""


def venv_python() -> Path:
    """The agno venv's Python: reused when it was built for ``REQUIREMENTS``, else (re)built."""
    python = VENV / "bin" / "python"
    marker = VENV / "runstream-requirements.txt"
    wanted = "\n".join(REQUIREMENTS)
    if marker.exists() and marker.read_text() == wanted and python.exists():
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
            check=True, capture_output=True, timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(VENV, ignore_errors=True)
        message = f"cannot build the agno venv: {exc}\n{output.decode(errors='replace')[-3000:]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    marker.write_text(wanted)
    return python


def load_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Workflow], dict[str, str]]:
    """The demo server's workflows that run to their end (every step kind, agents with tools)
    at full speed, and an input for each."""
    monkeypatch.setenv("RUNSTREAM_DEMO_PACE", "0")
    monkeypatch.setenv("RUNSTREAM_DATABASE_URL", f"sqlite:///{tmp_path}/unused.db")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    demo = runpy.run_path(str(ROOT / "cookbook" / "agent_os" / "workflow" / "basic_workflow.py"))
    examples = {"content-creation-workflow": "tide pools"}
    for path in sorted((ROOT / "cookbook" / "workflows").glob("[a-z]*.py")):
        module = runpy.run_path(str(path))
        example = module["EXAMPLE"]
        examples[module["workflow"].id] = example if isinstance(example, str) else json.dumps(example)
    workflows = [w for w in demo["server"].manager.workflows.values() if w.id in examples]
    assert {w.id for w in workflows} == set(examples)
    return workflows, examples


def load_pauses() -> tuple[list[Workflow], dict[str, dict[str, Any]]]:
    """The cookbook's pause examples (one per kind), each with its input and the answers it documents."""
    workflows, cases = [], {}
    for path in sorted((ROOT / "cookbook" / "hitl").glob("[a-z]*.py")):
        module = runpy.run_path(str(path))
        workflow: Workflow = module["workflow"]
        workflows.append(workflow)
        cases[workflow.id] = {"message": module["EXAMPLE"], "answers": module["ANSWERS"]}
    return workflows, cases


def flaky_workflow() -> Workflow:
    """A step that fails once, then succeeds: ``StepRetry``."""
    attempts = {"n": 0}

    def flaky(step_input: StepInput) -> str:
        attempts["n"] += 1
        if attempts["n"] % 2:
            raise RuntimeError("first try fails")
        return f"done: {step_input.input}"

    return Workflow(id="flaky", name="Flaky", steps=[Step(name="Flaky", executor=flaky, max_retries=1)])


def broken_workflow() -> Workflow:
    """A step that always raises: ``WorkflowError``."""

    async def broken(step_input: StepInput) -> AsyncIterator[str]:
        yield "about to fail "
        raise ValueError("the source is gone")

    return Workflow(id="broken", name="Broken", steps=[Step(name="Fetch", executor=broken)])


def run_checks(python: Path, *servers: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the checks against each server (one process: importing agno takes seconds)."""
    done = subprocess.run(
        [str(python), str(SCRIPT), json.dumps(servers)], capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"no report (exit {done.returncode}):\n{done.stderr[-5000:]}"
    reports: list[dict[str, Any]] = json.loads(lines[-1])
    failures = "\n".join(
        f"--- {server['url']} {name}\n{trace}" for server, report in zip(servers, reports)
        for name, trace in report["failed"].items()
    )
    assert not failures, f"{failures}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0
    print(json.dumps(reports, indent=1))
    return reports


@pytest.fixture(scope="module")
def agno_python() -> Path:
    return venv_python()


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, valve: Valve) -> Iterator[tuple[dict[str, Any], ...]]:
    workflows, examples = load_demo(tmp_path, monkeypatch)
    examples.update({"flaky": "data", "broken": "data"})
    paused, cases = load_pauses()
    served = [*workflows, flaky_workflow(), broken_workflow(), valve_workflow(valve, id="waiting"), *paused]

    def pauses_of(server: str) -> dict[str, Any]:
        """Each server's own inputs: the error example fails once per input, in this process."""
        return {"paused": {k: {**v, "message": f"{v['message']} ({server})"} for k, v in cases.items()}}

    base = {
        "blocking_pause": "hitl-confirmation", "history_pause": "hitl-output-review",
        "workflows": [w.id for w in served], "agents": "content-creation-workflow",
        "agent_steps": ["Research Step", "Content Planning Step"], "examples": examples,
        "ends": {"broken": ev.WORKFLOW_ERROR}, "waiting": "waiting", "extensions": sorted(EXTENSIONS),
    }
    open_server = Server(workflows=served, database_url=f"sqlite:///{tmp_path}/open.db")
    keyed_server = Server(workflows=served, database_url=f"sqlite:///{tmp_path}/keyed.db", security_key="compat-key")
    secret = "compat-jwt-secret-of-32-bytes-or-more"
    jwt_server = Server(workflows=served, database_url=f"sqlite:///{tmp_path}/jwt.db", auth=AuthConfig(jwt_secret=secret))
    token = jwt.encode(
        {"sub": "ana", "exp": int(time.time()) + 3600, "scopes": ["workflows:run", "sessions:read", "sessions:write"]},
        secret, algorithm="HS256",
    )
    with serve_in_thread(open_server) as opened, serve_in_thread(keyed_server) as keyed, \
            serve_in_thread(jwt_server) as jwt_served:
        yield (
            {**base, **pauses_of("open"), "url": opened.http_url},
            {**base, **pauses_of("keyed"), "url": keyed.http_url, "key": "compat-key", "walk": False},
            {**base, **pauses_of("jwt"), "url": jwt_served.http_url, "key": token, "walk": False},
        )


@pytest.mark.timeout(900)  # its first run builds the AgentOS venv (pip install agno and its dependencies)
def test_the_agentos_client_works_against_runstream(agno_python: Path, servers: tuple[dict[str, Any], ...]) -> None:
    report, *with_auth = run_checks(agno_python, *servers)
    assert "check_every_event_parses" in report["passed"]
    emitted = {v for k, v in vars(ev).items() if k.isupper() and isinstance(v, str)}
    assert emitted - set(report["events"]) == NOT_WALKED, report["events"]
    for keyed in with_auth:
        assert {"check_auth", "check_sessions", "check_run_workflow", "check_cancel", "check_continue"} <= set(keyed["passed"])


@pytest.mark.timeout(600)
def test_a_resumed_and_a_queued_run_parse_with_agno(agno_python: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo server with one run slot: run A runs, run B queues behind it; SIGKILL mid-A, and
    the restarted server resumes A (``WorkflowResumed``) and then starts B (``WorkflowQueued``
    first). agno parses every event of both logs but runstream's own, and its SSE reader skips those."""
    monkeypatch.setenv("RUNSTREAM_MAX_CONCURRENT_RUNS", "1")
    db, workflow = tmp_path / "demo.db", "content-creation-workflow"
    port = free_port()
    with demo_server(port, db, pace="0.01") as proc:
        url = f"http://127.0.0.1:{port}"
        started = [httpx.post(f"{url}/workflows/{workflow}/runs", timeout=30,
                              data={"message": topic, "background": "true", "session_id": f"logged-{topic}"}).json()
                   for topic in ("kites", "tides")]
        run_a, run_b = (r["run_id"] for r in started)
        assert started[1]["status"] == "queued", started
        wait_until(lambda: httpx.get(f"{url}/runs/{run_a}").json()["event_count"] >= 20, 60, what="run A to stream")
        proc.kill()
        proc.wait(timeout=30)
    port = free_port()
    with demo_server(port, db, pace="0"):
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: all(httpx.get(f"{url}/runs/{r}").json()["status"] == "completed" for r in (run_a, run_b)),
                   120, what="the restarted server to finish both runs")
        (report,) = run_checks(agno_python, {
            "url": url, "only": ["check_logged_runs"], "extensions": sorted(EXTENSIONS), "logged_runs": [
                {"workflow_id": workflow, "run_id": run_a, "expect": [ev.WORKFLOW_RESUMED, ev.WORKFLOW_COMPLETED]},
                {"workflow_id": workflow, "run_id": run_b, "expect": [ev.WORKFLOW_QUEUED, ev.WORKFLOW_COMPLETED]},
            ],
        })
    assert report["passed"] == ["check_logged_runs"]
    assert {ev.WORKFLOW_RESUMED, ev.WORKFLOW_QUEUED} <= set(report["events"])
