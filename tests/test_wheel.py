"""The package stands alone: its wheel, installed outside the repository, runs ``runstream demo``.

The wheel is built from this tree and installed with ``--no-deps`` into a fresh
venv in a temporary folder; the dependencies come from the test environment's
site-packages through a ``.pth`` line (its editable ``runstream`` finder is not
loaded that way), so what runs is the wheel's own code and data.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.waiting import wait_until
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.timeout(600)  # it builds a wheel and a venv, then runs the demo from them


def test_the_wheel_runs_the_demo_without_the_repository(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("runstream-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "runstream/py.typed" in names and "runstream/demo/content.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata and "Classifier: Typing :: Typed" in metadata
    urls = {line.split(": ", 1)[1].split(", ", 1)[0] for line in metadata.splitlines() if line.startswith("Project-URL: ")}
    assert urls == {"Homepage", "Repository", "Documentation", "Changelog", "Issues"}, urls

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    (Path(_site_packages(python)) / "test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr

    away = tmp_path / "elsewhere"  # no repository here, nor above
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTREAM_", "OPENAI_", "PYTHON"))}
    where = subprocess.run([str(python), "-c", "import runstream; print(runstream.__file__)"], cwd=away, env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert where.startswith(str(venv)), where

    port = free_port()
    env.update(RUNSTREAM_DEMO_PACE="0", PORT=str(port))
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        demo = subprocess.Popen([str(venv / "bin" / "runstream"), "demo"], cwd=away, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "Try it from another terminal" in log.read_text() or demo.poll() is not None, 90, what="the demo")
        assert demo.poll() is None, log.read_text()
        url = f"http://127.0.0.1:{port}"
        run = httpx.post(f"{url}/workflows/content-creation-workflow/runs",
                         data={"message": "Electric ferries", "stream": "false"}, timeout=60).json()
        assert run["status"] == "COMPLETED" and "Electric ferries" in str(run["output"])
    finally:
        demo.kill()
        demo.wait(timeout=30)
    assert (away / "data" / "demo.db").exists()  # its own database, in the folder it was started from


def _site_packages(python: Path) -> str:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()
