"""``GET /config`` and the ``/sessions`` routes, in AgentOS's shapes, against a real server on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from runstream import Server
from tests.conftest import RunningServer, serve_in_thread
from tests.runkit import Valve, demo_workflow, schema_workflow, valve_workflow
from tests.waiting import wait_until


@pytest.fixture
def srv(log_url: str, valve: Valve) -> Iterator[RunningServer]:
    server = Server(workflows=[demo_workflow(tokens=4), valve_workflow(valve), schema_workflow()], database_url=log_url)
    with serve_in_thread(server) as running:
        yield running


@pytest.fixture
def http(srv: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.http_url, timeout=30) as client:
        yield client


def run(http: httpx.Client, session_id: str, user_id: str = "ana", message: str = "hello", workflow: str = "demo") -> dict:
    response = http.post(
        f"/workflows/{workflow}/runs",
        data={"message": message, "stream": "false", "session_id": session_id, "user_id": user_id},
    )
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int, code: str, detail: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and detail in body["detail"], body


def ids(page: dict) -> list[str]:
    return [s["session_id"] for s in page["data"]]


def test_config(http: httpx.Client) -> None:
    config = http.get("/config").json()
    assert (config["os_id"], config["name"], config["databases"], config["os_database"]) == (
        "runstream", "runstream", ["runstream"], "runstream")
    assert [w["id"] for w in config["workflows"]] == ["demo", "valve", "typed"]
    assert config["workflows"][0] == {"id": "demo", "name": "Demo", "description": None, "db_id": "runstream",
                                      "is_factory": False, "is_component": False, "sandboxed": False}
    assert config["agents"] == config["teams"] == config["interfaces"] == [] and config["company"] is None
    assert config["session"]["dbs"][0]["db_id"] == "runstream"


def test_list_sessions_pages_filters_and_sorts(http: httpx.Client) -> None:
    run(http, "s1", "ana", "first")
    run(http, "s2", "bo", "second")
    run(http, "s3", "ana", "third one")
    page = http.get("/sessions").json()
    assert ids(page) == ["s3", "s2", "s1"]  # newest first
    assert page["meta"]["page"] == 1 and page["meta"]["limit"] == 20
    assert (page["meta"]["total_count"], page["meta"]["total_pages"]) == (3, 1) and page["meta"]["search_time_ms"] >= 0
    first = page["data"][2]
    assert (first["session_name"], first["session_type"], first["workflow_id"], first["workflow_name"]) == (
        "first", "workflow", "demo", "Demo")
    assert first["user_id"] == "ana" and first["created_at"].endswith("Z") and first["session_data"] == {"session_state": {}}
    assert ids(http.get("/sessions", params={"sort_order": "asc"}).json()) == ["s1", "s2", "s3"]
    assert ids(http.get("/sessions", params={"sort_by": "session_name", "sort_order": "asc"}).json()) == ["s1", "s2", "s3"]
    assert ids(http.get("/sessions", params={"user_id": "ana"}).json()) == ["s3", "s1"]
    assert ids(http.get("/sessions", params={"session_name": "ONE"}).json()) == ["s3"]
    assert ids(http.get("/sessions", params={"component_id": "typed"}).json()) == []
    assert ids(http.get("/sessions", params={"type": "workflow", "component_id": "demo"}).json()) == ["s3", "s2", "s1"]
    agents = http.get("/sessions", params={"type": "agent"}).json()
    assert agents["data"] == [] and agents["meta"]["total_count"] == 0
    second = http.get("/sessions", params={"limit": 2, "page": 2}).json()
    assert ids(second) == ["s1"] and (second["meta"]["page"], second["meta"]["total_pages"]) == (2, 2)
    assert ids(http.get("/sessions", params={"limit": 2, "page": 3}).json()) == []


def test_list_sessions_errors(http: httpx.Client) -> None:
    assert_error(http.get("/sessions", params={"sort_by": "state"}), 422, "invalid_request", "sort_by")
    assert_error(http.get("/sessions", params={"sort_order": "up"}), 422, "invalid_request", "sort_order")
    assert_error(http.get("/sessions", params={"type": "crew"}), 422, "invalid_request", "type")
    assert_error(http.get("/sessions", params={"page": 0}), 422, "invalid_request", "page")
    assert_error(http.get("/sessions", params={"limit": 0}), 422, "invalid_request", "limit")
    assert_error(http.get("/sessions", params={"db_id": "other"}), 404, "unknown_database")
    assert http.get("/sessions", params={"db_id": "runstream"}).status_code == 200


def test_get_session_and_its_runs(http: httpx.Client) -> None:
    first = run(http, "s1", message="first")
    second = run(http, "s1", message="second")
    session = http.get("/sessions/s1", params={"type": "workflow"}).json()
    assert (session["session_id"], session["session_name"], session["workflow_data"]) == ("s1", "first", {"name": "Demo"})
    assert_error(http.get("/sessions/nope"), 404, "unknown_session", "Session nope not found")
    assert_error(http.get("/sessions/s1", params={"type": "agent"}), 404, "unknown_session", "Session s1 not found")
    assert_error(http.get("/sessions/s1", params={"user_id": "bo"}), 404, "unknown_session")

    runs = http.get("/sessions/s1/runs").json()
    assert [r["run_id"] for r in runs] == [first["run_id"], second["run_id"]]  # oldest first
    one = runs[0]
    assert (one["status"], one["run_input"], one["workflow_id"], one["content"], one["content_type"]) == (
        "COMPLETED", "first", "demo", first["output"], "str")
    assert one["event_count"] == first["event_count"] and one["created_at"].endswith("Z")
    metrics = one["metrics"]
    assert set(metrics["steps"]) == {"Research", "Write"} and metrics["steps"]["Write"]["executor_name"] == "Writer"
    assert metrics == first["metrics"]  # what the run itself answered
    assert http.get(f"/sessions/s1/runs/{second['run_id']}").json() == runs[1]
    assert [r["run_id"] for r in http.get("/sessions/s1/runs", params={"status": ["completed", "ERROR"]}).json()] == [
        first["run_id"], second["run_id"]]
    assert http.get("/sessions/s1/runs", params={"status": "running"}).json() == []
    assert http.get("/sessions/s1/runs", params={"created_after": second["created_at"] + 1}).json() == []
    assert len(http.get("/sessions/s1/runs", params={"created_before": second["created_at"] + 1}).json()) == 2
    assert_error(http.get("/sessions/s1/runs", params={"status": ["done"]}), 422, "invalid_request",
                 "Invalid status value(s) ['done']")
    assert_error(http.get("/sessions/nope/runs"), 404, "unknown_session")
    assert_error(http.get("/sessions/s1/runs/nope"), 404, "unknown_run")
    other = run(http, "s2")
    assert_error(http.get(f"/sessions/s1/runs/{other['run_id']}"), 404, "unknown_run")


def test_structured_input_names_the_session_as_json(http: httpx.Client) -> None:
    response = http.post("/workflows/typed/runs", json={"message": {"topic": "tides"}, "stream": False, "session_id": "t"})
    assert response.status_code == 200
    assert http.get("/sessions/t").json()["session_name"] == '{"topic":"tides"}'
    assert http.get("/sessions/t/runs").json()[0]["run_input"] == '{"topic":"tides"}'


def test_rename_session(http: httpx.Client) -> None:
    run(http, "s1")
    renamed = http.post("/sessions/s1/rename", json={"session_name": "Release notes"})
    assert renamed.status_code == 200 and renamed.json()["session_name"] == "Release notes"
    assert http.get("/sessions/s1").json()["session_name"] == "Release notes"
    run(http, "s1", message="another run keeps the name")
    assert http.get("/sessions/s1").json()["session_name"] == "Release notes"
    assert_error(http.post("/sessions/s1/rename", json={"session_name": ""}), 422, "invalid_request")
    assert_error(http.post("/sessions/s1/rename", json={}), 422, "invalid_request")
    assert_error(http.post("/sessions/nope/rename", json={"session_name": "x"}), 404, "unknown_session")


def test_delete_session_and_sessions(http: httpx.Client, valve: Valve) -> None:
    gone = run(http, "s1")
    run(http, "s2")
    run(http, "s3")
    assert http.delete("/sessions/s1").status_code == 204
    assert_error(http.get("/sessions/s1"), 404, "unknown_session")
    assert_error(http.get(f"/runs/{gone['run_id']}"), 404, "unknown_run")
    assert_error(http.delete("/sessions/s1"), 404, "unknown_session")

    body = {"session_ids": ["s2", "nope"], "session_types": ["workflow", "workflow"]}
    assert_error(http.request("DELETE", "/sessions", json=body), 404, "unknown_session", "Session nope not found")
    assert http.get("/sessions/s2").status_code == 200  # all or none
    mismatched = {"session_ids": ["s2", "s3"], "session_types": ["workflow"]}
    assert_error(http.request("DELETE", "/sessions", json=mismatched), 422, "invalid_request", "same length")
    assert_error(http.request("DELETE", "/sessions", json={"session_ids": [], "session_types": []}), 422, "invalid_request")

    busy = http.post("/workflows/valve/runs", data={"message": "go", "background": "true", "session_id": "s4"}).json()
    both = {"session_ids": ["s2", "s4"], "session_types": ["workflow", "workflow"]}
    assert_error(http.request("DELETE", "/sessions", json=both), 409, "session_active", "['s4']")
    assert_error(http.delete("/sessions/s4"), 409, "session_active")
    assert http.get("/sessions/s2").status_code == 200
    valve.open()
    wait_until(lambda: http.get(f"/runs/{busy['run_id']}").json()["status"] == "completed", what="the run to end")
    assert http.request("DELETE", "/sessions", json=both).status_code == 204
    assert ids(http.get("/sessions").json()) == ["s3"]


def test_response_models_type_the_schema_and_leave_the_json_as_agentos_reads_it(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]

    def ok(path: str, method: str = "get") -> dict[str, object]:
        schema: dict[str, object] = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        return schema

    assert ok("/sessions") == {"$ref": "#/components/schemas/SessionPage"}
    assert ok("/sessions/{session_id}") == ok("/sessions/{session_id}/rename", "post") == {
        "$ref": "#/components/schemas/SessionBody"}
    assert ok("/sessions/{session_id}/runs")["items"] == {"$ref": "#/components/schemas/SessionRun"}  # type: ignore[index]
    assert ok("/sessions/{session_id}/runs/{run_id}") == {"$ref": "#/components/schemas/SessionRun"}

    run(http, "s1")
    session = http.get("/sessions/s1").json()
    assert list(session) == ["session_id", "session_name", "session_type", "user_id", "workflow_id", "workflow_name",
                             "session_state", "session_data", "workflow_data", "created_at", "updated_at"]
    assert http.get("/sessions").json()["data"] == [session]
    assert list(http.get("/sessions").json()["meta"]) == ["page", "limit", "total_pages", "total_count", "search_time_ms"]
    one = http.get("/sessions/s1/runs").json()[0]
    assert list(one) == ["run_id", "run_input", "workflow_id", "workflow_name", "session_id", "user_id", "status",
                         "content", "content_type", "metrics", "event_count", "created_at", "updated_at"]  # no nulls
    assert isinstance(one["content"], str) and one["metrics"]["steps"]
