"""The web console in a real browser (Debian's chromium, driven by Playwright) against a real
server process (``tests.apps.console_app``): start a run, reload mid-run, close and reopen
it from the runs list, kill and restart the server mid-run, replay, cancel, sign in.

Each test compares what the page shows with the run's own log: every step is drawn, and
each step's text is exactly its ``StepCompleted`` content, once. Screenshots of a running
and a finished run go to ``docs/img/`` when ``RUNSTREAM_SCREENSHOTS`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.waiting import wait_until
from tests.conftest import IN_CI, ROOT, free_port
from tests.runkit import parse_sse

if IN_CI:  # the test extra installs it: its absence is a failure
    from playwright import sync_api as playwright_api
else:
    playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "img"
WAIT = 30_000  # ms, for the page


@dataclass
class ConsoleServer:
    """``tests.apps.console_app`` as a real process over ``folder/console.db``."""

    folder: Path
    key: str | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ConsoleServer:
        """Start it (again on the same port, when it ran before)."""
        self.port = self.port or free_port()
        env = {
            **os.environ,
            "CONSOLE_DB": str(self.folder / "console.db"),
            "CONSOLE_PORT": str(self.port),
            "CONSOLE_DIR": str(self.folder),
            "CONSOLE_KEY": self.key or "",
        }
        with open(self.folder / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.apps.console_app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._ready, 30, what=f"the console server on port {self.port}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError((self.folder / "server.log").read_text(errors="replace"))
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def open_gate(self) -> None:
        (self.folder / "open").touch()

    def close_gate(self) -> None:
        (self.folder / "open").unlink(missing_ok=True)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def start_run(self, workflow: str = "story", message: str = "tides") -> str:
        answer = httpx.post(f"{self.url}/workflows/{workflow}/runs", json={"message": message, "background": True},
                            headers=self.headers())
        assert answer.status_code == 202, answer.text
        run_id: str = answer.json()["run_id"]
        return run_id

    def run(self, run_id: str) -> dict[str, Any]:
        record: dict[str, Any] = httpx.get(f"{self.url}/runs/{run_id}", headers=self.headers()).json()
        return record

    def events(self, run_id: str, workflow: str = "story") -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/workflows/{workflow}/runs/{run_id}/events", headers=self.headers(), timeout=30)
        return [e["data"] for e in parse_sse(answer.text)]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail("chromium is not installed, and CI requires it (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    """One server process for the module (starting one takes seconds on a busy machine)."""
    server = ConsoleServer(tmp_path_factory.mktemp("console")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(shared_server: ConsoleServer) -> ConsoleServer:
    """The shared server, its gate closed: the ``Examples`` step of new runs waits."""
    shared_server.close_gate()
    return shared_server


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"errors in the page: {errors}"


def rendered(page: Any) -> dict[str, dict[str, str]]:
    """Every block the page drew: its key, kind, status, name and streamed text."""
    blocks: list[dict[str, str]] = page.eval_on_selector_all(
        ".block",
        """nodes => nodes.map(n => ({
            key: n.dataset.key, status: n.dataset.status, kind: n.className,
            name: n.querySelector(':scope > .block-head .name').textContent,
            text: n.querySelector(':scope > .text').textContent,
            output: n.querySelector(':scope > .output').textContent,
        }))""",
    )
    keys = [b["key"] for b in blocks]
    assert len(keys) == len(set(keys)), f"a block drawn twice: {keys}"
    return {b["key"]: b for b in blocks}


def assert_matches_log(page: Any, events: list[dict[str, Any]]) -> None:
    """Every part of the run is drawn, finished, and each step shows its whole text once."""
    blocks = rendered(page)
    completed = {e["step_path"]: e for e in events if e["event"].endswith("Completed") and "step_path" in e}
    assert set(blocks) == set(completed), (sorted(blocks), sorted(completed))
    for path, done in completed.items():
        block = blocks[path]
        assert block["status"] == "completed", block
        if done["event"] == "StepCompleted":
            assert (block["text"] or block["output"]) == done["content"], (path, block["text"], done["content"])


def wait_status(page: Any, status: str) -> None:
    page.wait_for_selector(f"body[data-run-status={status}]", timeout=WAIT)


def open_run(page: Any, server: ConsoleServer, run_id: str) -> None:
    page.goto(f"{server.url}/#/run/{run_id}")


def examples_text(page: Any) -> str:
    text: str = page.text_content('.block[data-key="1.1"] > .text') or ""
    return text


def screenshot(page: Any, name: str) -> None:
    if os.environ.get("RUNSTREAM_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_start_a_run_reload_mid_run_and_see_every_step_once(server: ConsoleServer, page: Any) -> None:
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(str(payload))))
    page.goto(server.url + "/")
    page.check("#wf-story")
    page.fill("#field-message", "tides")
    page.click("#start-button")
    page.wait_for_url("**/#/run/*", timeout=WAIT)
    run_id = page.url.rsplit("/", 1)[1]
    page.wait_for_function("document.querySelector('.block[data-key=\"1.1\"] > .text')?.textContent.includes('Example 5')",
                           timeout=WAIT)
    assert page.get_attribute("#run-status", "data-status") == "running"
    assert page.is_visible("#run-progress")
    # the state a reload draws from is saved every SAVE_EVERY ms: wait for the first save
    page.wait_for_function("Number(document.body.dataset.renderedIndex || -1) > 0", timeout=WAIT)
    index = int(page.get_attribute("body", "data-rendered-index") or "-1")

    sent.clear()
    page.reload()
    # drawn from the stored state at once, and followed from the index it had reached
    page.wait_for_selector('.block[data-key="1.1"]', timeout=WAIT)
    assert "Example 5" in examples_text(page)
    page.wait_for_function("document.body.dataset.connection === 'ok' && document.querySelector('#run-line').textContent.startsWith('Running')",
                           timeout=WAIT)
    reconnects = [json.loads(s) for s in sent if '"reconnect"' in s]
    assert reconnects and reconnects[0]["last_event_index"] >= index, (index, reconnects)  # not from the start
    screenshot(page, "console-running.png")

    server.open_gate()
    wait_status(page, "completed")
    events = server.events(run_id)
    assert_matches_log(page, events)
    assert examples_text(page).count("Example 1 ") == 1
    assert page.is_hidden("#run-progress")
    assert page.text_content("#run-output") == server.run(run_id)["output"]
    tool = page.locator('.block[data-key="0"] details.tool')
    assert tool.count() == 1 and not tool.evaluate("d => d.open") and "search_notes" in tool.inner_text()
    assert page.locator('.block[data-key="1"] > ol.branches > .block').count() == 2
    screenshot(page, "console-finished.png")


def test_close_the_page_and_reopen_the_run_from_the_runs_list(server: ConsoleServer, page: Any) -> None:
    run_id = server.start_run(message="harbours")
    open_run(page, server, run_id)
    page.wait_for_function("document.querySelector('.block[data-key=\"1.1\"] > .text')?.textContent.includes('Example 5')",
                           timeout=WAIT)
    context = page.context
    page.close()
    server.open_gate()
    wait_until(lambda: server.run(run_id)["status"] == "completed", what="the run to end")

    again = context.new_page()
    again.goto(server.url + "/#/runs")
    row = again.locator(f'tr[data-run="{run_id}"]')
    row.wait_for(timeout=WAIT)
    assert row.get_attribute("data-status") == "completed" and "Story" in row.inner_text()
    row.get_by_role("link", name=f"Open run {run_id}").click()
    wait_status(again, "completed")
    assert_matches_log(again, server.events(run_id))


def test_killed_and_restarted_server_the_page_resumes_and_shows_the_text_once(server: ConsoleServer, page: Any) -> None:
    run_id = server.start_run(message="storms")
    open_run(page, server, run_id)
    page.wait_for_function("document.querySelector('.block[data-key=\"1.1\"] > .text')?.textContent.includes('Example 5')",
                           timeout=WAIT)
    server.kill()
    page.wait_for_selector("#banner:not([hidden])", timeout=WAIT)
    assert "Reconnecting" in page.text_content("#banner")
    server.open_gate()
    server.start()  # same port, same database: it resumes the run from its interrupted step
    wait_status(page, "completed")
    assert page.is_hidden("#banner")
    events = server.events(run_id)
    assert any(e["event"] == "WorkflowResumed" for e in events)
    assert "resumed" in page.text_content("#run-notices")
    assert_matches_log(page, events)
    assert examples_text(page).count("Example 1 ") == 1  # the re-run step's text, not twice


def test_replay_a_finished_run_in_a_fresh_browser(server: ConsoleServer, browser: Any) -> None:
    server.open_gate()
    run_id = server.start_run(message="rivers")
    wait_until(lambda: server.run(run_id)["status"] == "completed", what="the run to end")
    context = browser.new_context(viewport={"width": 360, "height": 800})  # a phone: one column
    page = context.new_page()
    open_run(page, server, run_id)
    wait_status(page, "completed")
    events = server.events(run_id)
    assert_matches_log(page, events)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.click("#run-replay")
    wait_status(page, "completed")
    page.wait_for_selector('.block[data-key="2"][data-status="completed"]', timeout=WAIT)
    assert_matches_log(page, events)
    context.close()


def test_cancel_a_running_run(server: ConsoleServer, page: Any) -> None:
    run_id = server.start_run(message="ice")
    open_run(page, server, run_id)
    page.wait_for_selector('.block[data-key="1.1"]', timeout=WAIT)
    page.get_by_role("button", name="Cancel run").click()
    wait_status(page, "cancelled")
    assert page.text_content("#run-error") == "The run was cancelled."
    assert page.is_hidden("#run-cancel")
    assert server.run(run_id)["status"] == "cancelled"


def test_runs_list_filters_and_cancels(server: ConsoleServer, page: Any) -> None:
    held = server.start_run(message="held")
    page.goto(server.url + "/#/runs?status=running")
    row = page.locator(f'tr[data-run="{held}"]')
    row.wait_for(timeout=WAIT)
    statuses = page.eval_on_selector_all("#runs-body tr", "rows => rows.map(r => r.dataset.status)")
    assert set(statuses) == {"running"}
    row.get_by_role("button", name=f"Cancel run {held}").click()
    row.wait_for(state="detached", timeout=WAIT)  # no longer running
    page.select_option("#filter-status", "cancelled")
    page.wait_for_selector(f'tr[data-run="{held}"][data-status="cancelled"]', timeout=WAIT)
    assert "status=cancelled" in page.url


def test_a_server_with_a_key_asks_once_per_tab_session(tmp_path: Path, browser: Any) -> None:
    server = ConsoleServer(tmp_path, key="s3cret").start()
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("#auth-dialog[open]", timeout=WAIT)
        page.fill("#auth-token", "wrong")
        page.keyboard.press("Enter")
        page.wait_for_selector("#auth-error:not([hidden])", timeout=WAIT)
        page.fill("#auth-token", "s3cret")
        page.keyboard.press("Enter")
        page.wait_for_selector("#wf-story", timeout=WAIT)
        assert page.evaluate("sessionStorage.getItem('runstream.token')") == "s3cret"
        assert page.evaluate("localStorage.getItem('runstream.token')") is None
        page.reload()
        page.wait_for_selector("#wf-story", timeout=WAIT)
        assert page.is_hidden("#auth-dialog")
        server.open_gate()
        page.fill("#field-message", "keys")
        page.click("#start-button")
        wait_status(page, "completed")
        context.close()
        fresh = browser.new_context().new_page()  # another browser session asks again
        fresh.goto(server.url + "/#/runs")
        fresh.wait_for_selector("#auth-dialog[open]", timeout=WAIT)
        fresh.context.close()
    finally:
        server.stop()


def test_a_five_thousand_event_run_renders_whole(server: ConsoleServer, page: Any) -> None:
    page.goto(server.url + "/")
    page.evaluate("""() => { window.longest = 0; new PerformanceObserver(list => { for (const e of list.getEntries())
        window.longest = Math.max(window.longest, e.duration); }).observe({type: 'longtask', buffered: true}); }""")
    run_id = server.start_run("long", "5000")
    open_run(page, server, run_id)
    wait_status(page, "completed")
    events = server.events(run_id, "long")
    assert len(events) > 5000
    assert_matches_log(page, events)
    nodes = page.evaluate("document.querySelector('.block[data-key=\"0\"] > .text').childNodes.length")
    assert nodes == 1  # one text node, appended to
    print(f"5,000-event run: longest main-thread task {page.evaluate('window.longest'):.0f} ms")


def focus_by_tab(page: Any, condition: str, presses: int = 15) -> None:
    """Press Tab until ``condition`` (JS, on ``document.activeElement`` as ``a``) holds."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(f"(a => Boolean({condition}))(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached {condition}")


def test_the_keyboard_alone_starts_and_follows_a_run(server: ConsoleServer, page: Any) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("#wf-long")
    focus_by_tab(page, "a.name === 'workflow'")
    while not page.is_checked("#wf-long"):
        page.keyboard.press("ArrowDown")
    focus_by_tab(page, "a.id === 'field-message'")
    page.keyboard.type("30")
    focus_by_tab(page, "a.id === 'start-button'")
    page.keyboard.press("Enter")
    wait_status(page, "completed")
    assert page.get_attribute("#run-line", "aria-live") == "polite"
    assert page.text_content("#run-line").startswith("Completed")
    assert page.evaluate("document.activeElement.id") == "main"  # focus moved to the new view


def test_a_workflow_with_an_input_schema_gets_a_field_for_each_property(server: ConsoleServer, page: Any) -> None:
    page.goto(server.url + "/")
    page.check("#wf-trip")
    assert page.get_attribute("#field-days", "type") == "number" and page.get_attribute("#field-days", "max") == "14"
    assert page.get_attribute("#field-by_train", "type") == "checkbox"
    assert "(optional)" in page.text_content('label[for="field-by_train"]')
    page.fill("#field-city", "Lyon")
    page.evaluate("document.querySelector('#field-days').max = ''")  # let the server judge 40 days
    page.fill("#field-days", "40")
    page.click("#start-button")
    page.wait_for_selector("#form-error:not([hidden])", timeout=WAIT)
    assert page.text_content("#form-error").startswith("The input does not fit this workflow")
    page.fill("#field-days", "3")
    page.check("#field-by_train")
    page.click("#start-button")
    wait_status(page, "completed")
    assert page.text_content("#run-output") == "3 days in Lyon by train"
