"""Structured JSON logs (``RUNSTREAM_LOG_FORMAT=json``), from a real ``runstream serve`` process:
every line is one JSON object, and a line logged inside a run carries that run's id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from tests.conftest import free_port
from tests.processes import wait_port

APP = '''
import logging
from runstream import Server, Step, Workflow

def shout(step_input):
    logging.getLogger("app.steps").warning("working on %s", step_input.input, extra={"step": "shout"})
    return "done"

server = Server(workflows=[Workflow(id="loud", name="Loud", steps=[Step(name="shout", executor=shout)])])
'''


def test_json_logs_carry_the_run_id_on_lines_logged_inside_a_run(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    env = {**os.environ, "RUNSTREAM_LOG_FORMAT": "json", "RUNSTREAM_DATABASE_URL": f"sqlite:///{tmp_path}/j.db"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runstream", "serve", str(tmp_path / "app.py"), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )
    try:
        wait_port(port, proc, "runstream serve")  # type: ignore[arg-type]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            runs = [http.post("/workflows/loud/runs", data={"message": f"m{i}", "stream": "false"}).json() for i in range(2)]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    lines = [line for line in err.decode().splitlines() if line.strip()]
    entries = [orjson.loads(line) for line in lines]  # every line is JSON
    assert all({"time", "level", "logger", "message", "run_id"} <= set(e) for e in entries), lines
    steps = [e for e in entries if e["logger"] == "app.steps"]
    assert [(e["message"], e["run_id"], e["step"]) for e in steps] == [
        (f"working on m{i}", run["run_id"], "shout") for i, run in enumerate(runs)
    ]
    assert any(e["logger"].startswith("uvicorn") and e["run_id"] is None for e in entries), lines
