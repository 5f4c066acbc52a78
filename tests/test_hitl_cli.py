"""Pauses from the command line and the Python client: ``continue``, and ``run`` asking at a terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runstream import Router, Server, Step, StepInput, SyncClient, Workflow
from runstream.client import ServerError
from runstream.engine.hitl import HumanReview, UserInputField
from tests.conftest import ROOT, RunningServer, serve_in_thread
from tests.test_cli import _env, cli, json_lines


def echo(step_input: StepInput) -> str:
    return f"did {step_input.additional_data.get('user_input') or step_input.previous_step_content}"


WORKFLOWS = [
    Workflow(id="confirm", name="Confirm", steps=[
        lambda si: "ready",
        Step(name="Deploy", executor=echo, human_review=HumanReview(requires_confirmation=True, confirmation_message="Deploy now?")),
    ]),
    Workflow(id="input", name="Input", steps=[
        Step(name="Scale", executor=echo, human_review=HumanReview(
            requires_user_input=True, user_input_schema=[UserInputField("env", allowed_values=["staging", "prod"]),
                                                         UserInputField("replicas", field_type="int")])),
    ]),
    Workflow(id="route", name="Route", steps=[
        Router(name="triage", choices=[Step(name="Billing", executor=echo), Step(name="Support", executor=echo)],
               human_review=HumanReview(requires_user_input=True)),
    ]),
    Workflow(id="review", name="Review", steps=[
        Step(name="Draft", executor=lambda si: "a draft\nin two lines", human_review=HumanReview(requires_output_review=True)),
    ]),
]


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    with serve_in_thread(Server(workflows=WORKFLOWS, database_url=f"sqlite:///{tmp_path}/runs.db")) as running:
        yield running


def paused_run(srv: RunningServer, workflow_id: str) -> str:
    """A run of ``workflow_id`` once it has paused (a request that waits stops at the pause)."""
    run = httpx.post(f"{srv.http_url}/workflows/{workflow_id}/runs", data={"message": "go", "stream": "false"}, timeout=30).json()
    assert run["status"] == "PAUSED", run
    return str(run["run_id"])


def test_python_client_continue_run(srv: RunningServer) -> None:
    run_id = paused_run(srv, "input")
    with SyncClient(srv.http_url) as client:
        pending = client.pending(run_id)
        assert pending is not None and pending["kind"] == "user_input"
        with pytest.raises(ServerError) as bad:
            client.continue_run(run_id, user_input={"env": "qa", "replicas": 1})
        assert bad.value.code == "invalid_continue" and bad.value.status == 400
        client.continue_run(run_id, user_input={"env": "prod", "replicas": 2})
        events = list(client.follow(run_id))
        assert events[-1].name == "WorkflowCompleted" and events[-1].data["content"] == "did {'env': 'prod', 'replicas': 2}"
        assert client.pending(run_id) is None
        with pytest.raises(ServerError) as late:
            client.continue_run(run_id, confirmed=True)
        assert late.value.code == "run_not_paused"


def test_cli_continue_with_each_answer_kind(srv: RunningServer) -> None:
    confirm, scale, route = (paused_run(srv, w) for w in ("confirm", "input", "route"))
    done = cli("continue", confirm, "--confirm", "--json", url=srv.http_url)
    assert done.returncode == 0, done.stderr
    events = json_lines(done.stdout)
    assert events[0]["event"] == "StepContinued" and events[-1]["content"] == "did ready"

    wrong = cli("continue", scale, "--input", "env=qa", "--input", "replicas=2", url=srv.http_url)
    assert wrong.returncode == 1 and "invalid_continue" in wrong.stderr and "allowed values" in wrong.stderr
    typed = cli("continue", scale, "--input", "env=prod", "--input", "replicas=3", "--json", url=srv.http_url)
    assert json_lines(typed.stdout)[-1]["content"] == "did {'env': 'prod', 'replicas': 3}"

    nothing = cli("continue", route, url=srv.http_url)
    assert nothing.returncode != 0 and "--choose" in nothing.stderr
    chosen = cli("continue", route, "--choose", "Support", "--json", url=srv.http_url)
    names = [e["event"] for e in json_lines(chosen.stdout)]
    assert chosen.returncode == 0 and names[-1] == "WorkflowCompleted"
    again = cli("continue", route, "--choose", "Support", url=srv.http_url)
    assert again.returncode == 1 and "run_not_paused" in again.stderr


def test_a_continued_run_reports_the_whole_run_s_duration(srv: RunningServer) -> None:
    run_id = paused_run(srv, "confirm")
    done = cli("continue", run_id, "--confirm", url=srv.http_url)
    assert done.returncode == 0, done.stderr
    summary = [line for line in done.stdout.splitlines() if line.startswith(f"Run {run_id} completed in ")]
    attached = cli("attach", run_id, url=srv.http_url)
    assert summary and summary[0] in attached.stdout.splitlines(), (done.stdout, attached.stdout)


def test_run_off_a_terminal_shows_the_pause_and_exits_3(srv: RunningServer) -> None:
    shown = cli("run", "confirm", "go", url=srv.http_url)
    assert shown.returncode == 3, shown.stderr
    assert "is paused" in shown.stdout and "Deploy now?" in shown.stdout and "runstream continue" in shown.stdout
    as_json = cli("run", "route", "go", "--json", url=srv.http_url)
    assert as_json.returncode == 3 and json_lines(as_json.stdout)[-1]["event"] == "WorkflowPaused"


def test_off_a_terminal_the_pause_says_what_it_asks_and_the_command_that_answers_it(srv: RunningServer) -> None:
    """Someone reading a CI log or a pipe sees the question, what to decide on, and a command to paste."""
    expected = {
        "confirm": ["Deploy now?", "--confirm   (or --reject [--feedback TEXT])"],
        "input": ["env (str): one of staging, prod", "replicas (int)", "--input env=staging --input replicas=N"],
        "route": ["--choose Billing   (or another route: Billing, Support)"],
        "review": ["Review output of step 'Draft'?", "  | a draft", "  | in two lines",
                   "--confirm   (or --confirm --edit TEXT, or --reject [--feedback TEXT])"],
    }
    for workflow, lines in expected.items():
        shown = cli("run", workflow, "go", url=srv.http_url)
        assert shown.returncode == 3, shown.stderr
        run_id = shown.stdout.split("Started run ", 1)[1].split()[0]
        out = shown.stdout.splitlines()
        assert any(line.startswith(f"Run {run_id} is paused at ") for line in out), shown.stdout
        answer = next(line for line in out if line.startswith("Answer with: "))
        assert answer.startswith(f"Answer with: runstream continue {run_id} "), answer  # one line, not wrapped
        for line in lines:
            assert any(line in shown_line for shown_line in out), (line, shown.stdout)


def test_a_rejected_step_shows_as_skipped_not_done(srv: RunningServer) -> None:
    run_id = paused_run(srv, "confirm")
    done = cli("continue", run_id, "--reject", url=srv.http_url)
    assert done.returncode == 0, done.stderr
    assert "  ↷ Deploy skipped (rejected)" in done.stdout.splitlines(), done.stdout
    assert "✓ Deploy" not in done.stdout


class Terminal:
    """A CLI process on a pseudo-terminal: read what it shows, type answers."""

    def __init__(self, *args: str) -> None:
        self.fd, child = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runstream", *args], stdin=child, stdout=child, stderr=child,
            cwd=ROOT, env={**_env(), "TERM": "xterm"}, close_fds=True,
        )
        os.close(child)
        self.screen = ""

    def expect(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.plain:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never showed; the screen:\n{self.screen[-2000:]}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.screen += os.read(self.fd, 65536).decode(errors="replace")
                except OSError:  # the process ended and closed its side
                    assert text in self.plain, f"{text!r} never showed; the screen:\n{self.plain[-2000:]}"
                    return

    @property
    def plain(self) -> str:
        """The screen without its colours and cursor moves."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.screen)

    def type(self, line: str) -> None:
        os.write(self.fd, f"{line}\r".encode())

    def wait(self) -> int:
        code = self.process.wait(timeout=30)
        os.close(self.fd)
        return code


def test_run_on_a_terminal_asks_and_continues(srv: RunningServer) -> None:
    term = Terminal("run", "input", "go", "--url", srv.http_url)
    term.expect("env (str one of ['staging', 'prod']):")
    term.type("prod")
    term.expect("replicas (int):")
    term.type("many")  # not an int: asked again
    term.expect("'many' is not a whole number")
    term.type("4")
    term.expect("did {'env': 'prod', 'replicas': 4}")
    assert term.wait() == 0

    term = Terminal("run", "route", "go", "--url", srv.http_url)
    term.expect("Route (number or name):")
    term.type("1,2")  # this router takes one route
    term.expect("Pick one route: this router takes one")
    term.type("2")
    term.expect("did None")
    assert term.wait() == 0
