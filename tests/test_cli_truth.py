"""The CLI tells the truth: short run ids, times from the events, failures and tool calls shown,
plain lines off a terminal, JSON outputs, honest ``runs``, ``--version``, quick failure when the
server cannot be reached. Real server, the CLI as a subprocess (its output is a pipe, not a TTY)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runstream import Agent, DemoModel, Server, Step, StepInput, Workflow, __version__
from runstream.cli.display import RunView
from runstream.client import Event
from tests.conftest import ROOT, RunningServer, free_port, serve_in_thread
from tests.runkit import demo_workflow

pytestmark = pytest.mark.timeout(300)  # each test runs the CLI as real processes


def search_notes(query: str) -> list[str]:
    """Search the notes.

    Args:
        query: The topic.
    """
    return [f"a note on {query}"]


def boom(step_input: StepInput) -> str:
    raise ValueError("the source is down")


def summary(step_input: StepInput) -> dict[str, Any]:
    return {"title": "Tides", "words": 3}


def workflows() -> list[Workflow]:
    researcher = Agent(name="Researcher", model=DemoModel(pace=0, tokens=5), tools=[search_notes],
                       instructions="Call search_notes first.")
    return [
        demo_workflow(),
        Workflow(id="tools", name="Tools", steps=[Step(name="Look up", agent=researcher)]),
        Workflow(id="fails", name="Fails", steps=[Step(name="Fetch", executor=boom)]),
        Workflow(id="dict", name="Dict", steps=[Step(name="Sum up", executor=summary)]),
    ]


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    with serve_in_thread(Server(workflows=workflows(), database_url=f"sqlite:///{tmp_path}/runs.db")) as running:
        yield running


def cli(*args: str, url: str | None = None, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSTREAM_")}
    command = [sys.executable, "-m", "runstream", *args] + (["--url", url] if url else [])
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**env, "COLUMNS": str(columns)})


def finished(srv: RunningServer, workflow_id: str) -> str:
    response = httpx.post(f"{srv.http_url}/workflows/{workflow_id}/runs", data={"message": "tides", "stream": "false"})
    return str(response.json()["run_id"])


def test_attach_replay_and_cancel_take_a_unique_prefix(srv: RunningServer) -> None:
    ids: list[str] = []
    while len({i[0] for i in ids}) == len(ids):  # until two runs share a first character (17 at most)
        ids.append(finished(srv, "dict"))
    run_id = ids[0]
    attached = cli("attach", run_id[:8], url=srv.http_url)
    assert attached.returncode == 0, attached.stderr
    assert f"Run {run_id} completed" in attached.stdout
    replayed = cli("replay", run_id[:8], "--json", url=srv.http_url)
    assert replayed.returncode == 0 and run_id in replayed.stdout
    shared = next(a[0] for a in ids for b in ids if a != b and a[0] == b[0])
    ambiguous = cli("attach", shared, url=srv.http_url)
    assert ambiguous.returncode == 1
    assert f"error: Run id {shared} is ambiguous" in ambiguous.stderr and "(ambiguous_run_id)" in ambiguous.stderr
    unknown = cli("cancel", "zzzz", url=srv.http_url)
    assert unknown.returncode == 1 and "error: Run zzzz not found (unknown_run)" in unknown.stderr
    matched = httpx.get(f"{srv.http_url}/runs", params={"run_id_prefix": run_id[:8]}).json()
    assert [r["run_id"] for r in matched] == [run_id]


def test_durations_come_from_the_events_not_the_clock() -> None:
    view = RunView("r1")
    base = 1_700_000_000_000  # ms; long ago: a view that used the clock would say years

    def add(index: int, name: str, ms: int, **fields: Any) -> None:
        data = {"event": name, "event_index": index, "created_at": (base + ms) // 1000,
                "created_at_ms": base + ms, **fields}
        view.add(Event(name, index, data))

    add(0, "WorkflowStarted", 0)
    add(1, "StepStarted", 200, step_name="Research", step_index=0)
    add(2, "StepCompleted", 3_450, step_name="Research", step_index=0, success=True)
    add(3, "WorkflowCompleted", 14_700, content="done")
    assert round(view.elapsed(), 3) == 14.7
    assert round(next(iter(view.steps.values())).took(view.now()), 3) == 3.25


def test_a_finished_run_reports_its_own_duration(srv: RunningServer) -> None:
    run_id = finished(srv, "demo")
    events = [Event.from_json(line) for line in cli("replay", run_id, "--json", url=srv.http_url).stdout.splitlines()]
    took = (events[-1].data["created_at_ms"] - events[0].data["created_at_ms"]) / 1000
    attached = cli("attach", run_id, url=srv.http_url)
    assert f"Run {run_id} completed in {took:.1f}s ({len(events)} events)" in attached.stdout


def test_without_a_terminal_progress_is_plain_lines(srv: RunningServer) -> None:
    result = cli("run", "demo", "tides", url=srv.http_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(re.fullmatch(r"  … Research", line) for line in lines), result.stdout
    assert any(re.fullmatch(r"  ✓ Research \d+\.\ds", line) for line in lines), result.stdout
    assert any(re.fullmatch(r"  ✓ Write \d+\.\ds", line) for line in lines), result.stdout
    assert "\x1b[" not in result.stdout  # no cursor movement, no colour codes in a pipe


def test_a_failed_step_shows_a_cross_and_its_error(srv: RunningServer) -> None:
    result = cli("run", "fails", "x", url=srv.http_url)
    assert result.returncode == 1
    assert re.search(r"^  ✗ Fetch \d+\.\ds: the source is down$", result.stdout, re.M), result.stdout
    assert "the source is down" in result.stdout.splitlines()[-1]


def test_tool_calls_show_live_and_in_replay(srv: RunningServer) -> None:
    result = cli("run", "tools", "tides", url=srv.http_url)
    assert result.returncode == 0, result.stderr
    assert re.search(r'^    ✓ tool search_notes\(query=".*"\) \d+\.\d\ds$', result.stdout, re.M), result.stdout
    run_id = httpx.get(f"{srv.http_url}/runs", params={"limit": 1}).json()[0]["run_id"]
    replay = cli("replay", run_id, url=srv.http_url).stdout
    assert re.search(r"ToolCallStarted +Look up search_notes\(query=", replay), replay
    assert re.search(r'ToolCallCompleted +Look up search_notes\(query=".*"\) \d+\.\d\ds -> \["a note on', replay), replay


def test_dict_outputs_print_as_json(srv: RunningServer) -> None:
    result = cli("run", "dict", "x", url=srv.http_url)
    assert result.returncode == 0, result.stderr
    assert '{\n  "title": "Tides",\n  "words": 3\n}' in result.stdout


def test_runs_says_no_runs_yet_and_keeps_ids_whole(srv: RunningServer) -> None:
    empty = cli("runs", url=srv.http_url)
    assert empty.returncode == 0 and empty.stdout.strip() == "no runs yet"
    assert cli("runs", "--workflow", "demo", url=srv.http_url).stdout.strip() == "no runs match"
    run_id = finished(srv, "dict")
    narrow = cli("runs", url=srv.http_url, columns=60)
    assert run_id in narrow.stdout, narrow.stdout  # on one line, not folded


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"runstream {__version__}"


def test_attach_to_an_unreachable_server_gives_up_after_a_few_tries() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = cli("attach", "0b1f7c66-8d0c-4a63-9a5e-2f3a54b1c0d1", url=url)
    assert result.returncode == 1
    assert "error: cannot reach the server" in result.stderr
    assert (result.stdout + result.stderr).count("reconnecting in") == 2  # three tries, not the client's twenty
    short = cli("attach", "0b1f", url=url)  # a prefix is looked up over HTTP first: one try
    assert short.returncode == 1 and "cannot reach the server" in short.stderr
