"""The user's own acceptance test, run unchanged against the real demo server.

The script, ``events_replay.py``, is the user's and is not in this repository:
it is looked for at ``RUNSTREAM_REFERENCE_SCRIPT`` or at
``../shared/seed/events_replay.py`` beside the clone. Without it the test skips,
except under ``CI``, where it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.demo_process import ROOT, demo_server, port_open

SEED = Path(os.environ.get("RUNSTREAM_REFERENCE_SCRIPT") or ROOT.parent / "shared" / "seed" / "events_replay.py")
MISSING = (
    f"the user's reference script is missing: {SEED}. It is the user's acceptance test events_replay.py, "
    "not part of this repository: put it at ../shared/seed/events_replay.py beside the clone, or point "
    "RUNSTREAM_REFERENCE_SCRIPT at it; then run `.venv/bin/python -m pytest tests/test_reference.py` "
    "(it starts the demo server on port 7777 itself)"
)


def test_reference_script_passes_against_demo_server(tmp_path: Path) -> None:
    if not SEED.is_file():
        if IN_CI:
            pytest.fail(MISSING)
        pytest.skip(MISSING)
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
