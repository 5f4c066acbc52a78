"""A paused run in a real server process: it survives SIGKILL, and a crash after its continue."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx

from runstream import SQLiteLog
from tests.apps.process import CrashableServer
from tests.waiting import wait_until


def status(server: CrashableServer, run_id: str) -> str:
    return str(httpx.get(f"http://127.0.0.1:{server.port}/runs/{run_id}", timeout=10).json()["status"])


def test_a_paused_run_survives_sigkill_and_a_crash_after_its_continue(tmp_path: Path) -> None:
    first = CrashableServer(tmp_path, crash_at="step:ship").start()
    try:
        run = httpx.post(f"http://127.0.0.1:{first.port}/workflows/review/runs",
                         data={"message": "kites", "stream": "false"}, timeout=30).json()
        assert run["status"] == "PAUSED"
    finally:
        first.kill()

    second = CrashableServer(tmp_path, crash_at="step:ship").start()  # stops for good inside ship
    try:
        assert status(second, run["run_id"]) == "paused"
        answer = json.dumps([{"step_id": run["step_requirements"][0]["step_id"], "confirmed": True}])
        reply = httpx.post(f"http://127.0.0.1:{second.port}/workflows/review/runs/{run['run_id']}/continue",
                           data={"step_requirements": answer, "background": "true"}, timeout=30)
        assert reply.status_code == 202, reply.text
        wait_until(lambda: second.reached("ship"), what="the continued run to reach ship")
    finally:
        second.kill()

    third = CrashableServer(tmp_path).start()  # recovery resumes it: the answer is in the log, no new pause
    try:
        wait_until(lambda: status(third, run["run_id"]) == "completed", what="the resumed run to complete")
        events = httpx.get(f"http://127.0.0.1:{third.port}/workflows/review/runs/{run['run_id']}/events", timeout=30).text
    finally:
        third.terminate()
    assert events.count("event: WorkflowPaused") == 1 and events.count("event: StepContinued") == 1
    assert third.executions("kites") == {"research": 1, "ship": 2}  # ship was interrupted once; research never re-ran


def test_a_continue_whose_server_died_before_logging_the_answer_leaves_the_run_paused(tmp_path: Path) -> None:
    first = CrashableServer(tmp_path).start()
    try:
        run = httpx.post(f"http://127.0.0.1:{first.port}/workflows/review/runs",
                         data={"message": "kites", "stream": "false"}, timeout=30).json()
        assert run["status"] == "PAUSED"
    finally:
        first.kill()

    async def take_as_a_dead_server() -> None:  # what a continue leaves if its server dies before logging the answer
        log = SQLiteLog(str(tmp_path / "runs.db"))
        await log.open()
        try:
            assert await log.take_paused(run["run_id"], f"{socket.gethostname()}:{2**22 + 1}:gone")
        finally:
            await log.close()

    asyncio.run(take_as_a_dead_server())
    second = CrashableServer(tmp_path).start()
    try:
        wait_until(lambda: status(second, run["run_id"]) == "paused", what="recovery to give the run its pause back")
        answer = json.dumps([{"step_id": run["step_requirements"][0]["step_id"], "confirmed": True}])
        done = httpx.post(f"http://127.0.0.1:{second.port}/workflows/review/runs/{run['run_id']}/continue",
                          data={"step_requirements": answer, "stream": "false"}, timeout=30).json()
        events = httpx.get(f"http://127.0.0.1:{second.port}/workflows/review/runs/{run['run_id']}/events", timeout=30).text
    finally:
        second.terminate()
    assert done["status"] == "COMPLETED"
    assert events.count("event: WorkflowPaused") == 1 and "event: WorkflowResumed" not in events
    assert second.executions("kites") == {"research": 1, "ship": 1}
