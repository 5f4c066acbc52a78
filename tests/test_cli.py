"""The ``runstream`` CLI as a subprocess against a real server: run, attach, runs, replay, cancel, serve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from runstream import Server
from runstream.cli import COMMANDS
from runstream.cli.main import build_parser, main
from tests.conftest import ROOT, RunningServer, free_port, serve_in_thread
from tests.cutproxy import cutting_proxy
from tests.runkit import Valve, demo_workflow, valve_workflow
from tests.waiting import wait_until




@pytest.fixture
def srv(tmp_path: Path, valve: Valve) -> Iterator[RunningServer]:
    server = Server(workflows=[demo_workflow(), valve_workflow(valve)], database_url=f"sqlite:///{tmp_path}/runs.db")
    with serve_in_thread(server) as running:
        yield running


def cli(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "runstream", *args] + (["--url", url] if url else [])
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env())


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNSTREAM_")}
    return {**env, "COLUMNS": "200"}


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def start(srv: RunningServer, workflow_id: str) -> str:
    response = httpx.post(f"{srv.http_url}/workflows/{workflow_id}/runs", data={"message": "go", "background": "true"})
    return str(response.json()["run_id"])


def test_every_command_is_in_the_parser() -> None:
    names = {"serve", "run", "attach", "runs", "replay", "cancel"}
    assert names <= {c.name for c in COMMANDS}
    parser = build_parser()
    for name in names - {"serve"}:
        args = parser.parse_args([name, *(["w", "m"] if name == "run" else ["x"] if name in {"attach", "replay", "cancel"} else [])])
        assert args.url == "http://127.0.0.1:7777" and args.json is False


def test_run_json_prints_every_event_once(srv: RunningServer) -> None:
    result = cli("run", "demo", "hello", "--json", url=srv.http_url)
    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    assert [e["event_index"] for e in events] == list(range(len(events)))
    assert events[-1]["event"] == "WorkflowCompleted"
    assert f"Started run {events[0]['run_id']}" in result.stderr


def test_run_shows_steps_and_the_output(srv: RunningServer) -> None:
    result = cli("run", "demo", "hello", url=srv.http_url)
    assert result.returncode == 0, result.stderr
    assert "Research" in result.stdout and "Write" in result.stdout
    run = httpx.get(f"{srv.http_url}/runs", params={"limit": 1}).json()[0]
    assert f"Run {run['run_id']} completed" in result.stdout
    assert run["output"].split()[0] in result.stdout


def test_following_survives_dropped_connections(srv: RunningServer) -> None:
    run_id = start(srv, "demo")
    with cutting_proxy(srv.port, cut_after=400, max_cuts=4) as proxy:
        result = cli("attach", run_id, "--json", url=proxy.http_url)
    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    assert [e["event_index"] for e in events] == list(range(len(events)))
    assert events[-1]["event"] == "WorkflowCompleted" and proxy.cuts == 4
    assert result.stderr.count("reconnecting") == 4


def test_server_errors_are_one_line_and_exit_1(srv: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "nope", "hello", "--url", srv.http_url]) == 1
    assert capsys.readouterr().err == "error: Workflow nope not found (unknown_workflow)\n"
    assert main(["replay", "nope", "--url", srv.http_url]) == 1
    assert "Run nope not found" in capsys.readouterr().err
    assert main(["cancel", "nope", "--url", srv.http_url]) == 1
    assert "unknown_run" in capsys.readouterr().err
    assert main(["runs", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "cannot reach the server" in capsys.readouterr().err


def test_runs_table_and_json(srv: RunningServer) -> None:
    run = httpx.post(f"{srv.http_url}/workflows/demo/runs", data={"message": "x", "stream": "false"}).json()
    table = cli("runs", url=srv.http_url)
    assert table.returncode == 0 and run["run_id"] in table.stdout and "completed" in table.stdout
    rows = json_lines(cli("runs", "--json", "--status", "completed", url=srv.http_url).stdout)
    assert [r["run_id"] for r in rows] == [run["run_id"]]


def test_replay(srv: RunningServer) -> None:
    run = httpx.post(f"{srv.http_url}/workflows/demo/runs", data={"message": "x", "stream": "false"}).json()
    events = json_lines(cli("replay", run["run_id"], "--json", url=srv.http_url).stdout)
    assert [e["event_index"] for e in events] == list(range(run["event_count"]))
    text = cli("replay", run["run_id"], "--transport", "sse", url=srv.http_url).stdout.splitlines()
    assert len(text) == run["event_count"] and "WorkflowStarted" in text[0] and "WorkflowCompleted" in text[-1]


def test_attach_and_cancel(srv: RunningServer, valve: Valve, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = start(srv, "valve")
    wait_until(valve.reached.is_set, what="the run to reach the valve")
    with attach_process(srv, run_id) as attach:
        assert json.loads(attach.stdout.readline())["event"] == "WorkflowStarted"
        cancelled = cli("cancel", run_id, url=srv.http_url)
        assert cancelled.returncode == 0 and f"Cancelled run {run_id}" in cancelled.stdout
        events = json_lines(attach.stdout.read())
        assert attach.wait(30) == 2  # the exit status of a cancelled run
    assert events[-1]["event"] == "WorkflowCancelled"
    assert [e["event_index"] for e in events] == list(range(1, len(events) + 1))
    assert main(["cancel", run_id, "--json", "--url", srv.http_url]) == 1
    assert "run_not_active" in capsys.readouterr().err


@contextmanager
def attach_process(srv: RunningServer, run_id: str) -> Iterator[subprocess.Popen[str]]:
    command = [sys.executable, "-m", "runstream", "attach", run_id, "--json", "--url", srv.http_url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                          env=_env()) as process:
        yield process


def test_ctrl_c_detaches_and_the_run_goes_on(srv: RunningServer, valve: Valve) -> None:
    run_id = start(srv, "valve")
    wait_until(valve.reached.is_set, what="the run to reach the valve")
    with attach_process(srv, run_id) as attach:
        attach.stdout.readline()  # following: the first event is out
        attach.send_signal(signal.SIGINT)
        assert attach.wait(30) == 130
        assert f"Detached from run {run_id}; it keeps running" in attach.stdout.read() + attach.stderr.read()
    assert httpx.get(f"{srv.http_url}/runs/{run_id}").json()["status"] == "running"
    valve.open()
    wait_until(lambda: httpx.get(f"{srv.http_url}/runs/{run_id}").json()["status"] == "completed", what="the run")


def test_serve_a_file(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        "from runstream import Server, Workflow\n"
        "def hello(step_input):\n    return 'hello ' + str(step_input.input)\n"
        "server = Server(workflows=[Workflow(id='hi', name='Hi', steps=[hello])])\n"
    )
    port = free_port()
    database = tmp_path / "served.db"
    command = [sys.executable, "-m", "runstream", "serve", str(app), "--port", str(port),
               "--database-url", f"sqlite:///{database}"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=_env())
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _up(url), what="the served app")
        result = cli("run", "hi", "there", "--json", url=url)
        assert json_lines(result.stdout)[-1]["content"] == "hello there"
        assert database.exists()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.TransportError:
        return False
