"""runstream.js, the browser library, under node's test runner: its pure part, and its
follow, start, list and cancel against real servers (one behind a proxy that cuts
connections mid-stream, one with a security key)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runstream import Server
from tests.conftest import IN_CI, ROOT, RunningServer, serve_in_thread
from tests.cutproxy import cutting_proxy
from tests.runkit import Valve, demo_workflow, valve_workflow

NODE = shutil.which("node")


def require_node() -> str:
    if NODE is None:
        if IN_CI:
            pytest.fail("node is not installed, and CI requires it")
        pytest.skip("node is not installed")
    return NODE


def websocket_flag(node: str) -> list[str]:
    """Node 20 has its WebSocket client behind a flag; 22 and later have it on."""
    probe = subprocess.run([node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"], timeout=30)
    return [] if probe.returncode == 0 else ["--experimental-websocket"]


@pytest.fixture
def servers(tmp_path: Path, valve: Valve) -> Iterator[tuple[RunningServer, RunningServer]]:
    plain = Server(workflows=[demo_workflow(tokens=60), valve_workflow(valve)], database_url=f"sqlite:///{tmp_path / 'a.db'}")
    keyed = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path / 'b.db'}", security_key="secret")
    with serve_in_thread(plain) as a, serve_in_thread(keyed) as b:
        yield a, b


def test_console_and_library_are_served_without_a_key(servers: tuple[RunningServer, RunningServer]) -> None:
    plain, keyed = servers
    for server in (plain, keyed):  # no key needed: the page must load to ask for one
        js = httpx.get(f"{server.http_url}/static/runstream.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert js.text == (ROOT / "runstream" / "static" / "runstream.js").read_text()
        types = httpx.get(f"{server.http_url}/static/runstream.d.ts")
        assert types.status_code == 200 and "export declare class Client" in types.text
        page = httpx.get(f"{server.http_url}/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/console.js">' in page.text
    missing = httpx.get(f"{plain.http_url}/static/nothing.js")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_library_under_node(servers: tuple[RunningServer, RunningServer]) -> None:
    node = require_node()
    plain, keyed = servers
    with cutting_proxy(plain.port, cut_after=4000, max_cuts=4) as ws_proxy, \
            cutting_proxy(plain.port, cut_after=4000, max_cuts=4) as sse_proxy:
        env = {
            **os.environ,
            "RUNSTREAM_URL": plain.http_url,
            "RUNSTREAM_CUT_URL_WS": ws_proxy.http_url,
            "RUNSTREAM_CUT_URL_SSE": sse_proxy.http_url,
            "RUNSTREAM_KEYED_URL": keyed.http_url,
        }
        result = subprocess.run(
            [node, *websocket_flag(node), "--no-warnings", "--test", "--test-reporter=spec", "tests/js/"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# skipped 0" in result.stdout or "skipped 0" in result.stdout, result.stdout
    assert ws_proxy.cuts == sse_proxy.cuts == 4
