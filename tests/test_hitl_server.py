"""Pauses through a real server: WebSocket and HTTP continues, errors, races, timeouts, restarts."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from runstream import Agent, DemoModel, Router, Server, Step, StepInput, Workflow, tool
from runstream.engine.hitl import HumanReview, UserInputField
from tests.conftest import RunningServer, serve_in_thread
from tests.runkit import parse_sse
from tests.waiting import wait_until
from tests.wsclient import recv, send

pytestmark = pytest.mark.anyio

RAN: list[str] = []
"""Which step functions ran, across servers of this process: a step before a pause runs once."""


def ran(name: str, content: str | None = None) -> Any:
    def run(step_input: StepInput) -> str:
        RAN.append(name)
        user_input = step_input.additional_data.get("user_input")
        return content or f"{name}({user_input or step_input.previous_step_content})"

    run.__name__ = name
    return run


def tool_agent() -> Agent:
    @tool(requires_confirmation=True)
    def deploy(env: str) -> str:
        """Deploy the release.

        Args:
            env: Where to deploy.
        """
        RAN.append(f"deploy {env}")
        return f"deployed to {env}"

    return Agent(name="Deployer", model=DemoModel(pace=0, tokens=60), instructions="Use deploy.", tools=[deploy])


def workflows(timeout: float | None = None, on_timeout: str = "cancel") -> list[Workflow]:
    return [
        Workflow(id="confirm", name="Confirm", steps=[
            ran("prepare", "ready"),
            Step(name="Deploy", executor=ran("deploy"), human_review=HumanReview(
                requires_confirmation=True, confirmation_message="Deploy now?", on_reject="cancel",
                timeout=timeout, on_timeout=on_timeout)),
            ran("report"),
        ]),
        Workflow(id="input", name="Input", steps=[
            Step(name="Ask", executor=ran("ask"), human_review=HumanReview(
                requires_user_input=True, user_input_schema=[UserInputField("env", allowed_values=["staging", "prod"])])),
        ]),
        Workflow(id="tool", name="Tool", steps=[Step(name="Ship", agent=tool_agent())]),
        Workflow(id="review", name="Review", steps=[
            Step(name="Draft", executor=ran("draft", "a long draft"), human_review=HumanReview(requires_output_review=True, on_reject="retry")),
            Step(name="Publish", executor=ran("publish"), human_review=HumanReview(requires_confirmation=True)),
        ]),
        Workflow(id="router-review", name="Router Review", steps=[
            Router(lambda si: "Billing", name="triage",
                   choices=[Step(name="Billing", executor=ran("billing")), Step(name="Support", executor=ran("support"))],
                   human_review=HumanReview(requires_output_review=True, on_reject="retry", max_retries=1)),
            ran("reply"),
        ]),
        Workflow(id="route", name="Route", steps=[
            Router(name="triage", choices=[Step(name="Billing", executor=ran("billing")), Step(name="Support", executor=ran("support"))],
                   human_review=HumanReview(requires_user_input=True)),
        ]),
    ]


@pytest.fixture(autouse=True)
def clear_ran() -> None:
    RAN.clear()


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    server = Server(workflows=workflows(), database_url=f"sqlite:///{tmp_path}/runs.db")
    with serve_in_thread(server) as running:
        yield running


async def until_event(ws: Any, name: str) -> list[dict[str, Any]]:
    """Run events (control messages dropped) up to and including the first ``name``."""
    seen = []
    while True:
        message = await recv(ws)
        assert message.get("event") != "error", message
        if "event_index" in message:
            seen.append(message)
            if message["event"] == name:
                return seen


async def test_ws_confirmation_is_continued_on_the_socket_and_streamed_to_every_subscriber(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws, connect(srv.ws_url) as watcher:
        await recv(ws), await recv(watcher)
        await send(ws, action="start-workflow", workflow_id="confirm", message="v1")
        first = await until_event(ws, "WorkflowPaused")
        assert [e["event"] for e in first][-2:] == ["StepPaused", "WorkflowPaused"]
        paused = first[-1]
        run_id = paused["run_id"]
        req = paused["step_requirements"][-1]
        assert req["requires_confirmation"] and req["confirmation_message"] == "Deploy now?" and req["confirmed"] is None

        await send(watcher, action="reconnect", run_id=run_id, last_event_index=paused["event_index"] - 1)
        caught = await recv(watcher)
        assert caught["event"] == "catch_up" and caught["status"] == "paused" and caught["missed_events"] == 1
        assert (await recv(watcher))["event"] == "WorkflowPaused"
        subscribed = await recv(watcher)
        assert subscribed["event"] == "subscribed" and subscribed["status"] == "paused"

        # an answer that does not fit the stored requirement: a coded error, and the pause stays
        await send(ws, action="continue-workflow", workflow_id="confirm", run_id=run_id, session_id=paused["session_id"],
                   step_requirements=[{**req, "confirmed": "yes"}])
        error = await recv(ws)
        assert error["event"] == "error" and error["code"] == "invalid_continue" and "unresolved" in error["error"]

        await send(ws, action="continue-workflow", workflow_id="confirm", run_id=run_id, session_id=paused["session_id"],
                   step_requirements=[{**req, "confirmed": True}])
        rest = await until_event(ws, "WorkflowCompleted")
        watched = await until_event(watcher, "WorkflowCompleted")
        assert rest == watched
        assert rest[0]["event"] == "StepContinued" and rest[0]["event_index"] == paused["event_index"] + 1
        assert [e["event_index"] for e in first + rest] == list(range(len(first) + len(rest)))
        assert rest[-1]["content"] == "report(deploy(ready))" and RAN == ["prepare", "deploy", "report"]

        await send(ws, action="continue-workflow", run_id=run_id, step_requirements=[{**req, "confirmed": True}])
        late = await recv(ws)
        assert late["event"] == "error" and late["code"] == "run_not_paused"

        # a replay of the paused-then-continued run is exactly what was streamed live
        await send(ws, action="reconnect", run_id=run_id, last_event_index=-1)
        assert (await recv(ws))["event"] == "replay"
        assert await until_event(ws, "WorkflowCompleted") == first + rest


async def test_ws_rejection_that_cancels_ends_with_workflow_cancelled(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="confirm", message="v1")
        paused = (await until_event(ws, "WorkflowPaused"))[-1]
        await send(ws, action="continue-workflow", run_id=paused["run_id"],
                   step_requirements=[{"step_id": paused["step_requirements"][0]["step_id"], "confirmed": False}])
        rest = await until_event(ws, "WorkflowCancelled")
        assert [e["event"] for e in rest] == ["StepContinued", "WorkflowCancelled"]
        assert rest[-1]["reason"] == "Workflow cancelled: Step 'Deploy' was rejected" and rest[-1]["cancellation_stage"] == "PAUSED"
    assert RAN == ["prepare"]


async def test_ws_router_review_rejected_asks_for_a_route_again_and_cancels_at_max_retries(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="router-review", message="refund")
        first = await until_event(ws, "WorkflowPaused")
        assert [e["event"] for e in first][-2:] == ["StepOutputReview", "WorkflowPaused"]
        paused = first[-1]
        review = paused["step_requirements"][-1]
        assert review["step_type"] == "Router" and review["step_output"]["content"] == "billing(None)"
        continue_ = {"action": "continue-workflow", "run_id": paused["run_id"], "session_id": paused["session_id"]}
        await send(ws, **continue_, step_requirements=[{**review, "confirmed": False, "rejection_feedback": "wrong team"}])
        rerouted = await until_event(ws, "WorkflowPaused")
        assert [e["event"] for e in rerouted] == ["StepContinued", "RouterPaused", "WorkflowPaused"]
        assert rerouted[1]["retry_count"] == 1 and rerouted[1]["rejection_feedback"] == "wrong team"
        route = rerouted[-1]["step_requirements"][-1]
        await send(ws, **continue_, step_requirements=[*rerouted[-1]["step_requirements"][:-1],
                                                      {**route, "selected_choices": ["Support"]}])
        again = await until_event(ws, "WorkflowPaused")
        assert [e["event"] for e in again][-2:] == ["StepOutputReview", "WorkflowPaused"]
        assert again[-1]["step_requirements"][-1]["retry_count"] == 1
        await send(ws, **continue_, step_requirements=[{"step_id": route["step_id"], "retry_count": 1,
                                                       "is_post_execution": True, "confirmed": False}])
        rest = await until_event(ws, "WorkflowCancelled")
        assert [e["event"] for e in rest] == ["StepContinued", "WorkflowCancelled"]
        assert rest[-1]["reason"] == "Max retries (1) reached for step 'triage'" and rest[-1]["cancellation_stage"] == "PAUSED"
    assert RAN == ["billing", "support"]


def test_http_router_review_approved_with_an_edit_after_a_new_route(srv: RunningServer) -> None:
    with httpx.Client(base_url=srv.http_url, timeout=30) as http:
        paused = http.post("/workflows/router-review/runs", data={"message": "refund", "stream": "false"}).json()
        run_id, url = paused["run_id"], f"/workflows/router-review/runs/{paused['run_id']}/continue"
        review = paused["step_requirements"][-1]
        assert paused["status"] == "PAUSED" and review["kind"] == "output_review" and review["available_choices"] == ["Billing", "Support"]
        rejected = http.post(url, json={"step_requirements": [{**review, "confirmed": False}], "stream": False}).json()
        route = rejected["step_requirements"][-1]
        assert (route["kind"], route["retry_count"], route["requires_route_selection"]) == ("route", 1, True)
        unknown = http.post(url, json={"step_requirements": [{**route, "selected_choices": ["Sales"]}]})
        assert unknown.status_code == 400 and unknown.json()["code"] == "invalid_continue"
        events = parse_sse(http.post(url, data={"step_requirements": json.dumps([{**route, "selected_choices": ["Support"]}])}).text)
        assert [e["event"] for e in events][-2:] == ["StepOutputReview", "WorkflowPaused"]
        again = events[-1]["data"]["step_requirements"][-1]
        assert again["step_output"]["content"] == "support(None)" and len(events[-1]["data"]["step_requirements"]) == 3
        done = http.post(url, json={"step_requirements": [{**again, "confirmed": True, "edited_output": "Support has it"}],
                                    "stream": False}).json()
        assert done["status"] == "COMPLETED" and done["output"] == "reply(Support has it)", done
    assert RAN == ["billing", "support", "reply"]


def test_a_router_review_survives_a_restart_between_its_pauses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    with serve_in_thread(Server(workflows=workflows(), database_url=url)) as srv, httpx.Client(base_url=srv.http_url, timeout=30) as http:
        paused = http.post("/workflows/router-review/runs", data={"message": "a", "stream": "false"}).json()
        cont = f"/workflows/router-review/runs/{paused['run_id']}/continue"
        rerouted = http.post(cont, json={"step_requirements": [{**paused["step_requirements"][-1], "confirmed": False}],
                                         "stream": False}).json()
        route = rerouted["step_requirements"][-1]
    with serve_in_thread(Server(workflows=workflows(), database_url=url)) as srv, httpx.Client(base_url=srv.http_url, timeout=30) as http:
        assert http.get(f"/runs/{paused['run_id']}").json()["step_requirements"] == rerouted["step_requirements"]
        review = http.post(cont, json={"step_requirements": [{**route, "selected_choices": ["Support"]}], "stream": False}).json()
    with serve_in_thread(Server(workflows=workflows(), database_url=url)) as srv, httpx.Client(base_url=srv.http_url, timeout=30) as http:
        done = http.post(cont, json={"step_requirements": [{**review["step_requirements"][-1], "confirmed": True}],
                                     "stream": False}).json()
        assert done["status"] == "COMPLETED" and done["output"] == "reply(support(None))"
    assert RAN == ["billing", "support", "reply"]  # nothing completed ran again


def test_http_user_input_form_and_json_with_validation_errors(srv: RunningServer) -> None:
    with httpx.Client(base_url=srv.http_url, timeout=30) as http:
        events = parse_sse(http.post("/workflows/input/runs", data={"message": "go"}).text)
        assert [e["event"] for e in events][-2:] == ["StepPaused", "WorkflowPaused"]  # the stream ends at the pause
        run_id = events[-1]["data"]["run_id"]
        run = http.get(f"/workflows/input/runs/{run_id}").json()
        assert run["status"] == "PAUSED" and run["paused_step_name"] == "Ask" and run["pause_kind"] == "step"
        req = run["step_requirements"][-1]
        url = f"/workflows/input/runs/{run_id}/continue"

        bad_json = http.post(url, data={"step_requirements": "[{", "stream": "false"})
        assert bad_json.status_code == 400 and bad_json.json() == {"detail": "Invalid JSON in step_requirements field", "code": "invalid_continue"}
        wrong = http.post(url, data={"step_requirements": json.dumps([{**req, "user_input": {"env": "qa"}}]), "stream": "false"})
        assert wrong.status_code == 400 and "not in allowed values" in wrong.json()["detail"]
        assert http.get(f"/runs/{run_id}").json()["status"] == "paused"

        done = http.post(url, json={"step_requirements": [{**req, "user_input": {"env": "prod"}}], "stream": False})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "COMPLETED" and done.json()["output"] == "ask({'env': 'prod'})"
        again = http.post(url, data={"step_requirements": json.dumps([req]), "stream": "false"})
        assert again.status_code == 409 and again.json()["code"] == "run_not_paused"
        assert http.post(f"/workflows/confirm/runs/{run_id}/continue", data={}).status_code == 404


def test_http_route_selection_streams_the_continue(srv: RunningServer) -> None:
    with httpx.Client(base_url=srv.http_url, timeout=30) as http:
        paused = http.post("/workflows/route/runs", data={"message": "refund", "stream": "false"}).json()
        assert paused["status"] == "PAUSED" and paused["step_requirements"][0]["available_choices"] == ["Billing", "Support"]
        req = paused["step_requirements"][0]
        url = f"/workflows/route/runs/{paused['run_id']}/continue"
        unknown = http.post(url, data={"step_requirements": json.dumps([{**req, "selected_choices": ["Sales"]}])})
        assert unknown.status_code == 400 and unknown.json()["code"] == "invalid_continue"
        events = parse_sse(http.post(url, data={"step_requirements": json.dumps([{**req, "selected_choices": ["Billing"]}])}).text)
        names = [e["event"] for e in events]
        assert names[0] == "StepContinued" and names[-1] == "WorkflowCompleted" and "RouterExecutionStarted" in names
    assert RAN == ["billing"]


def test_step_requirements_keep_the_answered_pauses_before_the_active_one(srv: RunningServer) -> None:
    """As AgentOS: each pause appends its requirement; the earlier ones come back answered, in
    ``WorkflowPaused`` and in every run dict. A client may echo the whole list (its last entry
    answered) or send the active entry alone; a stale answer to an earlier pause answers nothing."""
    with httpx.Client(base_url=srv.http_url, timeout=30) as http:
        first = http.post("/workflows/review/runs", data={"message": "tides", "session_id": "hist", "stream": "false"}).json()
        run_id, url = first["run_id"], f"/workflows/review/runs/{first['run_id']}/continue"
        (review,) = first["step_requirements"]
        assert review["kind"] == "output_review" and review["step_output"]["content"] == "a long draft"
        rejected = {k: v for k, v in review.items() if k != "requirement_id"}  # as agno's client sends it back
        rejected.update(confirmed=False, rejection_feedback="shorter")
        second = http.post(url, data={"step_requirements": json.dumps([rejected]), "stream": "false"}).json()
        assert second["status"] == "PAUSED", second
        history, active = second["step_requirements"]
        assert (history["requirement_id"], history["confirmed"], history["rejection_feedback"]) == (
            review["requirement_id"], False, "shorter")
        assert (active["retry_count"], active["confirmed"], active["rejection_feedback"]) == (1, None, "shorter")

        stale = http.post(url, data={"step_requirements": json.dumps([rejected]), "stream": "false"})
        assert stale.status_code == 400 and stale.json()["code"] == "invalid_continue", stale.text
        for body in (http.get(f"/workflows/review/runs/{run_id}").json(), http.get("/sessions/hist/runs").json()[0],
                     http.get(f"/sessions/hist/runs/{run_id}").json(), http.get(f"/runs/{run_id}").json()):
            assert body["step_requirements"] == second["step_requirements"], body

        echoed = [*second["step_requirements"][:-1], {**active, "confirmed": True, "edited_output": "Tides."}]
        third = http.post(url, json={"step_requirements": echoed, "stream": False}).json()
        assert [r["kind"] for r in third["step_requirements"]] == ["output_review", "output_review", "confirmation"]
        assert third["step_requirements"][1]["confirmed"] is True and third["step_requirements"][1]["edited_output"] == "Tides."
        confirm = third["step_requirements"][-1]
        done = http.post(url, json={"step_requirements": [{"step_id": confirm["step_id"], "confirmed": True}], "stream": False})
        assert done.json()["status"] == "COMPLETED" and done.json()["output"] == "publish(Tides.)", done.text
        events = parse_sse(http.get(f"/workflows/review/runs/{run_id}/events").text)
        paused = [e["data"]["step_requirements"] for e in events if e["event"] == "WorkflowPaused"]
        assert [len(p) for p in paused] == [1, 2, 3] and paused[-1] == third["step_requirements"]
    assert RAN == ["draft", "draft", "publish"]


def test_two_concurrent_continues_one_wins(srv: RunningServer) -> None:
    with httpx.Client(base_url=srv.http_url, timeout=30) as http:
        paused = http.post("/workflows/confirm/runs", data={"message": "x", "stream": "false"}).json()
    url = f"{srv.http_url}/workflows/confirm/runs/{paused['run_id']}/continue"
    answer = json.dumps([{"step_id": paused["step_requirements"][0]["step_id"], "confirmed": True}])
    go = threading.Barrier(6)
    statuses: list[int] = []

    def attempt() -> None:
        with httpx.Client(timeout=30) as client:
            go.wait()
            statuses.append(client.post(url, data={"step_requirements": answer, "stream": "false"}).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [409] * 5
    assert RAN.count("deploy") == 1


def test_cancel_a_paused_run_at_once(srv: RunningServer) -> None:
    with httpx.Client(base_url=srv.http_url, timeout=30) as http:
        paused = http.post("/workflows/confirm/runs", data={"message": "x", "stream": "false"}).json()
        run_id = paused["run_id"]
        assert http.post(f"/workflows/confirm/runs/{run_id}/cancel").status_code == 200
        wait_until(lambda: http.get(f"/runs/{run_id}").json()["status"] == "cancelled", what="cancelled")
        events = parse_sse(http.get(f"/workflows/confirm/runs/{run_id}/events").text)
        assert events[-1]["event"] == "WorkflowCancelled" and [e["event"] for e in events].count("WorkflowPaused") == 1


def test_a_pause_times_out_with_nobody_connected(tmp_path: Path) -> None:
    server = Server(workflows=workflows(timeout=0.2, on_timeout="skip"), database_url=f"sqlite:///{tmp_path}/r.db", lease_ttl=0.6)
    with serve_in_thread(server) as srv, httpx.Client(base_url=srv.http_url, timeout=30) as http:
        paused = http.post("/workflows/confirm/runs", data={"message": "x", "stream": "false"}).json()
        assert paused["status"] == "PAUSED" and paused["step_requirements"][0]["on_timeout"] == "skip"
        run_id = paused["run_id"]
        wait_until(lambda: http.get(f"/runs/{run_id}").json()["status"] == "completed", what="the timeout")
        events = parse_sse(http.get(f"/workflows/confirm/runs/{run_id}/events").text)
        continued = next(e["data"] for e in events if e["event"] == "StepContinued")
        assert continued["timed_out"] is True and events[-1]["data"]["content"] == "report(ready)"
    assert RAN == ["prepare", "report"]


def test_a_paused_run_survives_a_restart_and_its_timeout_fires_after_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    with serve_in_thread(Server(workflows=workflows(), database_url=url)) as srv, httpx.Client(base_url=srv.http_url, timeout=30) as http:
        kept = http.post("/workflows/confirm/runs", data={"message": "a", "stream": "false"}).json()
    with serve_in_thread(Server(workflows=workflows(timeout=0.3, on_timeout="approve"), database_url=url)) as srv, httpx.Client(base_url=srv.http_url, timeout=30) as http:
        timed = http.post("/workflows/confirm/runs", data={"message": "b", "stream": "false"}).json()
    expires = time.time() + 0.3
    wait_until(lambda: time.time() > expires, what="the pause to expire while no server runs")
    with serve_in_thread(Server(workflows=workflows(), database_url=url, lease_ttl=0.6)) as srv, httpx.Client(base_url=srv.http_url, timeout=30) as http:
        wait_until(lambda: http.get(f"/runs/{timed['run_id']}").json()["status"] == "completed", what="the timeout after a restart")
        assert http.get(f"/runs/{kept['run_id']}").json()["status"] == "paused"
        req = kept["step_requirements"][0]
        done = http.post(f"/workflows/confirm/runs/{kept['run_id']}/continue",
                         data={"step_requirements": json.dumps([{**req, "confirmed": True}]), "stream": "false"})
        assert done.json()["status"] == "COMPLETED"
    assert RAN.count("prepare") == 2 and RAN.count("deploy") == 2  # nothing before the pause ran again


@pytest.fixture
def replicas(postgres_url: str, redis_url: str) -> Iterator[tuple[RunningServer, RunningServer]]:
    def replica() -> Server:
        return Server(workflows=workflows(), database_url=postgres_url, redis_url=redis_url)

    with serve_in_thread(replica()) as a, serve_in_thread(replica()) as b:
        yield a, b


async def test_a_run_paused_on_one_replica_is_continued_on_the_other(replicas: tuple[RunningServer, RunningServer]) -> None:
    a, b = replicas
    async with connect(a.ws_url) as ws:
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="confirm", message="v1")
        first = await until_event(ws, "WorkflowPaused")
        paused = first[-1]
        answer = json.dumps([{"step_id": paused["step_requirements"][0]["step_id"], "confirmed": True}])
        url = f"/workflows/confirm/runs/{paused['run_id']}/continue"
        go = asyncio.Event()

        async def attempt(server: RunningServer) -> httpx.Response:
            async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
                await go.wait()
                return await http.post(url, data={"step_requirements": answer, "stream": "false"})

        for server in (a, b):  # each app builds its routes on their first request, one replica at a time:
            # FastAPI hides a pydantic warning while it builds them with warnings.catch_warnings, which
            # is process-wide, so two servers of this process building at once could see it as the
            # error the test settings make of warnings
            async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
                missing = await http.post(f"/workflows/confirm/runs/{uuid.uuid4()}/continue", data={})
                assert missing.status_code == 404, missing.text
        tries = [asyncio.ensure_future(attempt(s)) for s in (a, b, a, b)]
        go.set()
        answers = await asyncio.gather(*tries)
        assert sorted(r.status_code for r in answers) == [200, 409, 409, 409]
        assert all(r.json()["code"] == "run_not_paused" for r in answers if r.status_code == 409)
        # the socket on replica A sees the continue's events, wherever it ran
        rest = await until_event(ws, "WorkflowCompleted")
    assert rest[0]["event"] == "StepContinued" and [e["event_index"] for e in first + rest] == list(range(len(first) + len(rest)))
    assert RAN.count("deploy") == 1 and RAN.count("prepare") == 1


async def test_an_agent_tool_call_is_confirmed_over_the_wire_as_agentos_sends_it(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="tool", message="prod")
        first = await until_event(ws, "WorkflowPaused")
        assert [e["event"] for e in first][-2:] == ["StepExecutorPaused", "WorkflowPaused"]
        paused = first[-1]
        req = paused["step_requirements"][-1]
        assert req["requires_executor_input"] and req["executor_name"] == "Deployer" and RAN == []
        pending = req["executor_requirements"]
        await send(ws, action="continue-workflow", run_id=paused["run_id"],
                   step_requirements=[{**req, "executor_requirements": [{**pending[0], "confirmation": True}]}])
        rest = await until_event(ws, "WorkflowCompleted")
    assert rest[0]["event"] == "StepExecutorContinued" and RAN == ["deploy prod"]
    assert "ToolCallCompleted" in [e["event"] for e in rest] and "deployed to prod" in rest[-1]["content"]


def test_a_paused_run_s_event_stream_stays_open_and_carries_the_continue(srv: RunningServer) -> None:
    """GET .../events follows a paused run as a WebSocket reconnect does: it stays open after
    WorkflowPaused (an EventSource would otherwise reconnect in a loop, or, told 204, stop and
    miss the continue) and ends after the terminal event that the continue leads to."""
    from tests.test_sse import read_events

    with httpx.Client(base_url=srv.http_url, timeout=30) as http, httpx.Client(base_url=srv.http_url, timeout=30) as other:
        paused = http.post("/workflows/confirm/runs", data={"message": "x", "stream": "false"}).json()
        run_id, pause_index = paused["run_id"], paused["event_count"] - 1
        url = f"/workflows/confirm/runs/{run_id}/events"
        with http.stream("GET", url) as whole, http.stream("GET", url, headers={"Last-Event-ID": str(pause_index)}) as level:
            lines = whole.iter_lines()
            before = read_events(lines, pause_index + 1)
            assert before[-1]["event"] == "WorkflowPaused"
            answer = json.dumps([{"confirmed": True}])
            assert other.post(f"{url.removesuffix('/events')}/continue", data={"step_requirements": answer, "background": "true"}).status_code == 202
            after = read_events(lines)
            caught_up = read_events(level.iter_lines())
        assert [e["event"] for e in after][0] == "StepContinued" and after[-1]["event"] == "WorkflowCompleted"
        assert [e["id"] for e in caught_up] == [e["id"] for e in after]  # the same events, from the pause on
        assert int(after[0]["id"]) == pause_index + 1
