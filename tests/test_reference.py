"""The user's own acceptance test, run unchanged against the real demo server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo_process import ROOT, demo_server, port_open

SEED = ROOT.parent / "shared" / "seed" / "events_replay.py"


def test_reference_script_passes_against_demo_server(tmp_path: Path) -> None:
    if not SEED.exists():
        pytest.fail(f"the reference test is missing: {SEED}")
    if port_open(7777):
        pytest.fail("port 7777 is busy: the reference test needs it (stop the demo server first)")
    with demo_server(7777, tmp_path / "demo.db", log=tmp_path / "server.log"):
        result = subprocess.run([sys.executable, str(SEED)], capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    verdicts = [line for line in output.splitlines() if line.startswith("[")]
    assert "[ERROR]" not in output, output
    assert "[OK] No gaps in event sequence" in output, output
    assert "[OK] Replay started from event 0 (correct)" in output, output
    assert any(line.startswith("[OK] Received all") for line in verdicts), output
    assert all(line.startswith("[OK]") for line in verdicts), output
    completed = [line for line in output.splitlines() if "Workflow completed (" in line]
    assert completed and int(completed[0].split("(")[1].split()[0]) >= 100, output
