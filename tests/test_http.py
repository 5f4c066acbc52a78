"""The HTTP API (docs/protocol.md, "HTTP and SSE"; docs/http.md) against a real server: every route, its answers and its errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runstream import Server
from tests.conftest import RunningServer, serve_in_thread
from tests.runkit import Valve, demo_workflow, parse_sse, schema_workflow, valve_workflow
from tests.waiting import wait_until




@pytest.fixture
def srv(tmp_path: Path, valve: Valve) -> Iterator[RunningServer]:
    server = Server(
        workflows=[demo_workflow(), valve_workflow(valve), schema_workflow()],
        database_url=f"sqlite:///{tmp_path}/runs.db",
    )
    with serve_in_thread(server) as running:
        yield running


@pytest.fixture
def http(srv: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.http_url, timeout=30) as client:
        yield client


def finished_run(http: httpx.Client, **fields: str) -> dict:
    response = http.post("/workflows/demo/runs", data={"message": "hello", "stream": "false", **fields})
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["detail"], body


def test_health_and_docs(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/docs").status_code == 200


def test_openapi_describes_every_route_and_its_errors(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    expected = {
        "/workflows": {"get"},
        "/workflows/{workflow_id}": {"get"},
        "/workflows/{workflow_id}/runs": {"get", "post"},
        "/workflows/{workflow_id}/runs/{run_id}": {"get"},
        "/workflows/{workflow_id}/runs/{run_id}/resume": {"post"},
        "/workflows/{workflow_id}/runs/{run_id}/events": {"get"},
        "/workflows/{workflow_id}/runs/{run_id}/cancel": {"post"},
        "/runs": {"get"},
        "/runs/{run_id}": {"get"},
        "/config": {"get"},
        "/sessions": {"get", "delete"},
        "/sessions/{session_id}": {"get", "delete"},
        "/sessions/{session_id}/rename": {"post"},
        "/sessions/{session_id}/runs": {"get"},
        "/sessions/{session_id}/runs/{run_id}": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert "404" in paths["/workflows/{workflow_id}/runs/{run_id}/resume"]["post"]["responses"]
    assert "422" in paths["/workflows/{workflow_id}/runs/{run_id}/resume"]["post"]["responses"]
    assert "409" in paths["/workflows/{workflow_id}/runs/{run_id}/cancel"]["post"]["responses"]
    start = paths["/workflows/{workflow_id}/runs"]["post"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(start["requestBody"]["content"])
    assert "text/event-stream" in start["responses"]["200"]["content"]


def test_list_and_describe_workflows(http: httpx.Client) -> None:
    ids = [w["id"] for w in http.get("/workflows").json()]
    assert ids == ["demo", "valve", "typed"]
    typed = http.get("/workflows/typed").json()
    assert typed["input_schema"]["properties"]["topic"]["type"] == "string"
    assert [s["name"] for s in http.get("/workflows/demo").json()["steps"]] == ["Research", "Write"]
    assert_error(http.get("/workflows/nope"), 404, "unknown_workflow")


def test_start_streams_the_run_as_sse(http: httpx.Client) -> None:
    response = http.post("/workflows/demo/runs", data={"message": "hello", "session_id": "s1", "user_id": "u1"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert [int(e["id"]) for e in events] == list(range(len(events)))
    assert [e["data"]["event_index"] for e in events] == list(range(len(events)))
    assert events[0]["event"] == "WorkflowStarted" and events[-1]["event"] == "WorkflowCompleted"
    assert events[0]["data"]["session_id"] == "s1"
    assert response.headers["x-run-id"] == events[0]["data"]["run_id"]


def test_start_blocking_answers_with_the_output(http: httpx.Client) -> None:
    run = finished_run(http)
    assert run["status"] == "COMPLETED" and run["content"] == run["output"] and run["output"]  # AgentOS's RunStatus
    assert set(run["metrics"]["steps"]) == {"Research", "Write"}  # AgentOS's WorkflowMetrics
    via_json = http.post("/workflows/demo/runs", json={"message": "hello", "stream": False}).json()
    assert via_json["output"] == run["output"]


def test_start_in_background_answers_at_once(http: httpx.Client, valve: Valve) -> None:
    response = http.post("/workflows/valve/runs", data={"message": "go", "background": "true"})
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    assert response.json()["status"] == "running"  # runstream's own statuses here (AgentOS's 202 needs its durable queue)
    assert http.get(f"/workflows/valve/runs/{run_id}").json()["status"] == "RUNNING"
    valve.open()
    wait_until(lambda: http.get(f"/runs/{run_id}").json()["status"] == "completed", what="the run to end")


def test_start_errors(http: httpx.Client) -> None:
    assert_error(http.post("/workflows/nope/runs", data={"message": "x"}), 404, "unknown_workflow")
    assert_error(http.post("/workflows/demo/runs", data={"stream": "false"}), 422, "invalid_request")
    assert_error(http.post("/workflows/demo/runs", data={"message": "x", "stream": "maybe"}), 422, "invalid_request")
    bad_json = http.post("/workflows/demo/runs", content=b"{nope", headers={"content-type": "application/json"})
    assert_error(bad_json, 422, "invalid_request")
    assert_error(http.post("/workflows/typed/runs", json={"message": {"depth": 2}, "stream": False}), 422, "invalid_input")


def test_start_validates_input_against_the_schema(http: httpx.Client) -> None:
    run = http.post("/workflows/typed/runs", json={"message": {"topic": "tides"}, "stream": False}).json()
    assert run["status"] == "COMPLETED" and "tides" in run["output"]


def test_resume_sends_events_after_last_event_index(http: httpx.Client) -> None:
    run = finished_run(http)
    url = f"/workflows/demo/runs/{run['run_id']}/resume"
    everything = parse_sse(http.post(url, data={}).text)
    assert [e["data"]["event_index"] for e in everything] == list(range(run["event_count"]))
    tail = parse_sse(http.post(url, data={"last_event_index": "4", "session_id": run["session_id"]}).text)
    assert [e["data"]["event_index"] for e in tail] == list(range(5, run["event_count"]))
    assert http.post(url, data={"last_event_index": str(run["event_count"] - 1)}).status_code == 204


def test_resume_errors(http: httpx.Client) -> None:
    run = finished_run(http)
    assert_error(http.post("/workflows/demo/runs/nope/resume", data={}), 404, "unknown_run")
    assert_error(http.post(f"/workflows/nope/runs/{run['run_id']}/resume", data={}), 404, "unknown_workflow")
    assert_error(http.post(f"/workflows/valve/runs/{run['run_id']}/resume", data={}), 404, "unknown_run")
    url = f"/workflows/demo/runs/{run['run_id']}/resume"
    assert_error(http.post(url, data={"last_event_index": "abc"}), 422, "invalid_request")
    assert_error(http.post(url, data={"last_event_index": str(run["event_count"])}), 422, "invalid_request")
    assert_error(http.post(url, data={"last_event_index": "-2"}), 422, "invalid_request")


def test_events_errors(http: httpx.Client) -> None:
    run = finished_run(http)
    assert_error(http.get("/workflows/demo/runs/nope/events"), 404, "unknown_run")
    url = f"/workflows/demo/runs/{run['run_id']}/events"
    assert_error(http.get(url, headers={"Last-Event-ID": "abc"}), 422, "invalid_request")
    assert_error(http.get(url, params={"last_event_id": "abc"}), 422, "invalid_request")


def test_cancel(http: httpx.Client, valve: Valve) -> None:
    run_id = http.post("/workflows/valve/runs", data={"message": "go", "background": "true"}).json()["run_id"]
    wait_until(valve.reached.is_set, what="the run to reach the valve")
    response = http.post(f"/workflows/valve/runs/{run_id}/cancel")
    assert response.status_code == 200
    assert response.json() == {"run_id": run_id, "cancelled": True, "status": "cancelling", "already_requested": False}
    wait_until(lambda: http.get(f"/runs/{run_id}").json()["status"] == "cancelled", what="the cancel")
    events = parse_sse(http.get(f"/workflows/valve/runs/{run_id}/events").text)
    assert events[-1]["event"] == "WorkflowCancelled"
    assert_error(http.post(f"/workflows/valve/runs/{run_id}/cancel"), 409, "run_not_active")
    assert_error(http.post("/workflows/valve/runs/nope/cancel"), 404, "unknown_run")


def test_list_runs_filters_and_pages(http: httpx.Client) -> None:
    first = finished_run(http, session_id="s1", user_id="ana")
    second = finished_run(http, session_id="s2", user_id="bo")
    runs = http.get("/workflows/demo/runs").json()
    assert {r["run_id"] for r in runs} == {first["run_id"], second["run_id"]}
    assert [r["run_id"] for r in http.get("/workflows/demo/runs", params={"session_id": "s1"}).json()] == [first["run_id"]]
    assert [r["run_id"] for r in http.get("/workflows/demo/runs", params={"user_id": "bo"}).json()] == [second["run_id"]]
    assert http.get("/workflows/demo/runs", params={"status": "running"}).json() == []
    listed = http.get("/workflows/demo/runs", params={"status": "COMPLETED"}).json()  # either spelling filters
    assert {r["run_id"] for r in listed} == {first["run_id"], second["run_id"]} and listed[0]["status"] == "COMPLETED"
    assert len(http.get("/workflows/demo/runs", params={"status": "completed"}).json()) == 2
    page = http.get("/workflows/demo/runs", params={"limit": 1, "offset": 1}).json()
    assert len(page) == 1 and page[0]["run_id"] in {first["run_id"], second["run_id"]}
    assert http.get("/workflows/valve/runs").json() == []
    assert {r["run_id"] for r in http.get("/runs", params={"workflow_id": "demo"}).json()} == {first["run_id"], second["run_id"]}
    assert_error(http.get("/workflows/demo/runs", params={"limit": 0}), 422, "invalid_request")
    assert_error(http.get("/workflows/nope/runs"), 404, "unknown_workflow")


def test_get_run(http: httpx.Client) -> None:
    run = finished_run(http)
    got = http.get(f"/workflows/demo/runs/{run['run_id']}").json()
    assert got["status"] == "COMPLETED" and got["output"] == run["output"] and got["event_count"] == run["event_count"]
    # /runs is runstream's own route, with runstream's statuses; otherwise the same run
    assert http.get(f"/runs/{run['run_id']}").json() == {**got, "status": "completed"}
    assert_error(http.get("/workflows/demo/runs/nope"), 404, "unknown_run")
    assert_error(http.get("/runs/nope"), 404, "unknown_run")


def test_sessions(http: httpx.Client) -> None:
    finished_run(http, session_id="s1", user_id="ana")
    sessions = http.get("/sessions").json()["data"]  # more in test_sessions_http.py
    assert [s["session_id"] for s in sessions] == ["s1"] and sessions[0]["user_id"] == "ana"
    assert http.get("/sessions/s1").json()["workflow_id"] == "demo"
    assert http.get("/sessions", params={"user_id": "bo"}).json()["data"] == []
    assert_error(http.get("/sessions/nope"), 404, "unknown_session")


def test_security_key_requires_a_bearer_token(tmp_path: Path) -> None:
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/runs.db", security_key="s3cret")
    with serve_in_thread(server) as running, httpx.Client(base_url=running.http_url) as http:
        assert http.get("/health").status_code == 200
        assert_error(http.get("/workflows"), 401, "unauthorized")
        assert_error(http.get("/workflows", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        assert_error(http.post("/workflows/demo/runs", data={"message": "x"}), 401, "unauthorized")
        ok = http.get("/workflows", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()[0]["id"] == "demo"


def test_a_server_shutting_down_takes_no_new_runs(srv: RunningServer, http: httpx.Client) -> None:
    srv.server.manager.stop_accepting()
    assert_error(http.post("/workflows/demo/runs", data={"message": "x"}), 503, "shutting_down")
