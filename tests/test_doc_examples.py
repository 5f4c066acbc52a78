"""Every client example in docs/client.md and docs/http.md runs, as written, against the demo server.

A client example is a ``python`` or ``bash`` block that talks to the demo
server at ``127.0.0.1:7777`` or ``localhost:7777``; the test serves the demo on
an ephemeral port and rewrites only that. ``python`` blocks run with this
interpreter, ``bash`` blocks with bash (``curl``). Other blocks (JSON, SSE
text, browser JavaScript, server-side snippets) are shapes, not client programs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port
from tests.demo_process import demo_server

pytestmark = pytest.mark.timeout(300)  # the examples run as real processes against a real demo server

DOCS = [ROOT / "docs" / "client.md", ROOT / "docs" / "http.md"]
RUNNABLE = ("python", "bash")
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def examples() -> list[tuple[str, str, str]]:
    found = []
    for doc in DOCS:
        for n, (language, code) in enumerate(_BLOCK.findall(doc.read_text())):
            if language in RUNNABLE and ("127.0.0.1:7777" in code or "localhost:7777" in code):
                found.append((f"{doc.name}#{n}", language, code))
    return found


@pytest.fixture(scope="module")
def demo_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    with demo_server(port, tmp_path_factory.mktemp("docs") / "demo.db", pace="0.001"):
        yield port


def test_the_docs_have_examples_to_run() -> None:
    names = [name for name, _, _ in examples()]
    assert sum(n.startswith("client.md") for n in names) >= 3 and any(n.startswith("http.md") for n in names)


@pytest.mark.parametrize(("name", "language", "code"), examples(), ids=[e[0] for e in examples()])
def test_example_runs_against_the_demo(name: str, language: str, code: str, demo_port: int) -> None:
    code = code.replace("127.0.0.1:7777", f"127.0.0.1:{demo_port}").replace("localhost:7777", f"localhost:{demo_port}")
    command = [sys.executable, "-c", code] if language == "python" else ["bash", "-euo", "pipefail", "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, f"{name} failed:\n{code}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{name} printed nothing"
    assert "unknown_workflow" not in result.stdout and "WorkflowError" not in result.stdout, result.stdout
