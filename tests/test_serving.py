"""``Server.serve`` as a new user meets it, in real processes: where it listens, what it prints,
how it refuses a busy port or a database another server holds, how Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from runstream.server.listen import DEFAULT_HOST, listen_address
from runstream.server.logs import banner, log_level_of
from tests.waiting import wait_until
from tests.conftest import ROOT, free_port
from tests.demo_process import DEMO

pytestmark = pytest.mark.timeout(300)  # each test starts real server processes

BANNER_END = "Try it from another terminal"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_started(self) -> None:
        wait_until(lambda: BANNER_END in self.output or self.process.poll() is not None, 60, what="the server to start")
        assert BANNER_END in self.output, self.output

    def wait_exit(self) -> int:
        return self.process.wait(timeout=60)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTREAM_", "OPENAI_")) and k not in ("HOST", "PORT")}
    return {**env, **extra}


@contextmanager
def launch(command: list[str], log: Path, port: int, **env: str) -> Iterator[Served]:
    """Start ``command`` (a server) with its output in ``log``; SIGKILL it at exit if still alive."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=_env(**env), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield Served(process, log, port)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def demo(tmp_path: Path, name: str, database: Path, port: int | None = None, **env: str) -> Iterator[Served]:
    port = port or free_port()
    return launch([sys.executable, str(DEMO)], tmp_path / f"{name}.log", port,  # type: ignore[return-value]
                  PORT=str(port), RUNSTREAM_DATABASE_URL=f"sqlite:///{database}", **env)


def test_the_banner_says_what_is_served_where_and_what_to_try(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    with demo(tmp_path, "demo", database) as served:
        served.wait_started()
        out = served.output
        assert "Application startup complete" in out
        assert "content-creation-workflow" in out and "parallel-research" in out
        assert f"SQLite {database}" in out
        assert f"ws://127.0.0.1:{served.port}/workflows/ws" in out
        assert f"http://127.0.0.1:{served.port}/docs" in out
        assert f"console    http://127.0.0.1:{served.port}/" in out
        assert f'run content-creation-workflow --url http://127.0.0.1:{served.port} "hello"' in out
        assert httpx.get(f"{served.url}/health").status_code == 200


def test_ctrl_c_stops_cleanly_without_a_traceback(tmp_path: Path) -> None:
    with demo(tmp_path, "demo", tmp_path / "demo.db") as served:
        served.wait_started()
        served.process.send_signal(signal.SIGINT)
        assert served.wait_exit() == 0
        assert "Finished server process" in served.output
        assert "Traceback" not in served.output and "KeyboardInterrupt" not in served.output


def test_a_busy_port_is_refused_before_the_database_is_opened(tmp_path: Path) -> None:
    database = tmp_path / "never.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with demo(tmp_path, "busy", database, port) as served:
            assert served.wait_exit() == 1
    assert f"error: port {port} on 127.0.0.1 is already in use" in served.output
    assert "startup complete" not in served.output
    assert not database.exists()  # nothing was opened, nothing was resumed


def test_one_server_per_sqlite_file_and_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    with demo(tmp_path, "first", database, RUNSTREAM_DEMO_PACE="0.5") as first:  # slow: still running when killed
        first.wait_started()
        run = httpx.post(f"{first.url}/workflows/content-creation-workflow/runs",
                         data={"message": "locks", "background": "true"}).json()
        wait_until(lambda: httpx.get(f"{first.url}/runs/{run['run_id']}").json()["event_count"] > 5, 30, what="run progress")
        with demo(tmp_path, "second", database) as second:
            assert second.wait_exit() == 1
        assert f"error: {database} is in use by another runstream server (pid {first.process.pid}" in second.output
        assert "startup complete" not in second.output
        first.process.send_signal(signal.SIGKILL)
        first.wait_exit()
    with demo(tmp_path, "third", database, RUNSTREAM_DEMO_PACE="0") as third:
        third.wait_started()  # the kernel dropped the dead server's lock
        wait_until(lambda: httpx.get(f"{third.url}/runs/{run['run_id']}").json()["status"] == "completed", 30, what="the resume")
        assert f"resuming run {run['run_id']}" in third.output  # taken over, and the log says so
        assert f"run {run['run_id']} of content-creation-workflow resumed at event" in third.output
        assert f"run {run['run_id']} completed" in third.output


FAILING_APP = """
from helpers import boom
from runstream import Server, Workflow

server = Server(workflows=[Workflow(id="fails", name="Fails", steps=[boom])])
"""
HELPERS = """
def boom(step_input):
    raise ValueError("the step broke on purpose")
"""


def test_serve_logs_runs_and_a_failing_step_with_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app.py").write_text(FAILING_APP)
    (tmp_path / "app" / "helpers.py").write_text(HELPERS)  # a two-file app: serve puts its folder on sys.path
    port = free_port()
    command = [sys.executable, "-m", "runstream", "serve", str(tmp_path / "app" / "app.py"), "--port", str(port),
               "--database-url", f"sqlite:///{tmp_path / 'fails.db'}"]
    with launch(command, tmp_path / "serve.log", port) as served:
        served.wait_started()
        assert f'run fails --url http://127.0.0.1:{port} "hello"' in served.output
        run = httpx.post(f"{served.url}/workflows/fails/runs", data={"message": "x", "stream": "false"}).json()
        assert run["status"] == "ERROR"
        wait_until(lambda: "failed: the step broke on purpose" in served.output, 30, what="the run's failure in the log")
    out = served.output
    assert f"run {run['run_id']} of fails started" in out
    assert f"run {run['run_id']}: step 'boom' failed" in out
    assert "Traceback (most recent call last)" in out and 'raise ValueError("the step broke on purpose")' in out


def test_log_level_warning_keeps_the_server_quiet(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, str(DEMO)]
    env = {"PORT": str(port), "RUNSTREAM_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}", "RUNSTREAM_LOG_LEVEL": "warning"}
    with launch(command, tmp_path / "quiet.log", port, **env) as served:
        wait_until(lambda: _up(served.url), 30, what="the quiet server")
        served.process.send_signal(signal.SIGINT)
        assert served.wait_exit() == 0
    assert BANNER_END not in served.output and "INFO" not in served.output


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.TransportError:
        return False


def test_serve_of_a_missing_file_says_so(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "runstream", "serve", str(tmp_path / "nope.py")],
                            capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=60)
    assert result.returncode == 1
    assert f"error: {tmp_path / 'nope.py'}: no such file" in result.stderr
    assert "cannot reach the server" not in result.stderr


def test_listen_address_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RUNSTREAM_HOST", "RUNSTREAM_PORT", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)
    assert listen_address() == (DEFAULT_HOST, 7777) == ("127.0.0.1", 7777)
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "8000")
    assert listen_address() == ("0.0.0.0", 8000)
    monkeypatch.setenv("RUNSTREAM_HOST", "::1")
    monkeypatch.setenv("RUNSTREAM_PORT", "9000")
    assert listen_address() == ("::1", 9000)
    assert listen_address("127.0.0.2", 9100) == ("127.0.0.2", 9100)  # arguments win
    monkeypatch.setenv("RUNSTREAM_PORT", "http")
    with pytest.raises(SystemExit, match="RUNSTREAM_PORT='http' is not a port number"):
        listen_address()


def test_log_level_names_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNSTREAM_LOG_LEVEL", raising=False)
    assert log_level_of() == "info"
    monkeypatch.setenv("RUNSTREAM_LOG_LEVEL", "DEBUG")
    assert log_level_of() == "debug" and log_level_of("warning") == "warning"
    with pytest.raises(SystemExit, match="unknown log level 'loud'"):
        log_level_of("loud")


def test_banner_on_every_interface_warns_and_hides_passwords() -> None:
    text = banner(["a"], "postgresql://app:secret@db/runs", "0.0.0.0", 8000, has_console=True)
    assert "secret" not in text and "postgresql://app:***@db/runs" in text
    assert "http://localhost:8000/ " not in text and "console    http://localhost:8000/" in text
    assert "listening on every interface" in text
    assert "--url http://localhost:8000" in text
