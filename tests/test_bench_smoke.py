"""The benchmark harness in a tiny mode: it must see every stream gapless and complete. No timing is checked."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.client import Tally, follow_run, start_run  # noqa: E402
from bench.servers import start_model, start_system  # noqa: E402


def frame(index: int, name: str = "RunContent") -> str:
    return f'event: {name}\ndata: {{"event":"{name}","run_id":"r","event_index":{index},"content":"5 "}}\n\n'


def test_tally_flags_a_gap_and_a_late_event() -> None:
    tally = Tally()
    assert not tally.feed('{"event":"replay","run_id":"r"}', 10)
    for index in (0, 1, 3):
        tally.feed(frame(index), 10)
    assert tally.feed(frame(4, "WorkflowCompleted"), 10)
    assert tally.errors == ["expected event_index 2, got 3"]
    tally.feed(frame(5), 10)
    assert not tally.ok and "after the terminal event" in tally.errors[-1]


def test_harness_sees_runstream_and_the_floor_gapless(tmp_path: Path) -> None:
    model = start_model(tmp_path)
    try:
        for system in ("runstream", "floor"):
            proc = start_system(system, model, tmp_path / f"{system}.db", tmp_path)
            try:
                url, session = f"ws://127.0.0.1:{proc.port}/workflows/ws", str(uuid.uuid4())
                live = asyncio.run(start_run(url, "token-storm", "bench:50:0:0", session, 60))
                again = asyncio.run(follow_run(url, live.run_id or "", "token-storm", session, 60))
            finally:
                proc.stop()
            assert live.ok and again.ok, (system, live.errors, again.errors)
            assert live.events == again.events >= 50
            assert len(live.latencies_ns) >= 49
    finally:
        model.stop()


def test_the_paused_runs_benchmark_runs_to_its_figures() -> None:
    """bench/paused.py in a tiny mode: its runs pause, survive the restart, and its continues
    complete (it read a continue's AgentOS status as runstream's and failed after measuring)."""
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "paused.py"), "--runs", "120"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "growth per paused run:" in done.stdout and "over 100 runs" in done.stdout, done.stdout
