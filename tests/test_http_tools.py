"""HTTP for browsers and tools: CORS only when asked, ``/docs`` with no CDN, typed OpenAPI responses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runstream import Server
from runstream.log.base import RunRecord
from runstream.server.schemas import RunBody
from tests.conftest import RunningServer, serve_in_thread
from tests.runkit import demo_workflow

PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


def served(tmp_path: Path, **options: object) -> Iterator[RunningServer]:
    server = Server(workflows=[demo_workflow()], database_url=f"sqlite:///{tmp_path}/runs.db", **options)  # type: ignore[arg-type]
    with serve_in_thread(server) as running:
        yield running


@pytest.fixture
def srv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    monkeypatch.delenv("RUNSTREAM_CORS_ORIGINS", raising=False)
    yield from served(tmp_path)


def test_cors_is_off_by_default(srv: RunningServer) -> None:
    preflight = httpx.options(f"{srv.http_url}/workflows/demo/runs", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in preflight.headers
    plain = httpx.get(f"{srv.http_url}/runs", headers={"Origin": "https://app.example"})
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


def test_cors_allows_the_origins_named(tmp_path: Path) -> None:
    for running in served(tmp_path, cors_origins=["https://app.example"]):
        url = f"{running.http_url}/workflows/demo/runs"
        preflight = httpx.options(url, headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        started = httpx.post(url, data={"message": "hi", "background": "true"}, headers={"Origin": "https://app.example"})
        assert started.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.get(f"{running.http_url}/runs", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_cors_origins_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNSTREAM_CORS_ORIGINS", "https://a.example, https://b.example")
    for running in served(tmp_path):
        for origin in ("https://a.example", "https://b.example"):
            answer = httpx.get(f"{running.http_url}/health", headers={"Origin": origin})
            assert answer.headers["access-control-allow-origin"] == origin


def test_docs_load_nothing_from_outside(srv: RunningServer) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{srv.http_url}{page}").text
        urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html) + re.findall(r"""url: ?['"]([^'"]+)['"]""", html)
        assert urls, html
        assert not [u for u in urls if "//" in u], f"{page} loads from outside: {urls}"
        for url in urls:
            if url.startswith("/docs-assets/"):
                asset = httpx.get(f"{srv.http_url}{url}")
                assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert "SwaggerUIBundle" in httpx.get(f"{srv.http_url}/docs-assets/swagger-ui-bundle.js").text


def test_openapi_types_the_responses(srv: RunningServer) -> None:
    schema = httpx.get(f"{srv.http_url}/openapi.json").json()
    paths = schema["paths"]

    def ok(path: str, method: str = "get", status: str = "200") -> dict[str, object]:
        content: dict[str, object] = paths[path][method]["responses"][status]["content"]["application/json"]["schema"]
        return content

    assert ok("/runs/{run_id}") == {"$ref": "#/components/schemas/RunBody"}
    assert ok("/runs")["items"] == {"$ref": "#/components/schemas/RunBody"}  # type: ignore[index]
    assert ok("/workflows")["items"] == {"$ref": "#/components/schemas/WorkflowSummary"}  # type: ignore[index]
    assert ok("/workflows/{workflow_id}/runs/{run_id}/cancel", "post") == {"$ref": "#/components/schemas/Cancelled"}
    assert ok("/workflows/{workflow_id}/runs", "post", "202") == {"$ref": "#/components/schemas/RunBody"}
    assert ok("/health") == {"$ref": "#/components/schemas/Health"}
    assert set(schema["components"]["schemas"]["RunBody"]["required"]) >= {"run_id", "status", "event_count"}


def test_response_models_keep_the_json_as_it_was(srv: RunningServer) -> None:
    run = httpx.post(f"{srv.http_url}/workflows/demo/runs", data={"message": "hi", "stream": "false"}).json()
    fetched = httpx.get(f"{srv.http_url}/runs/{run['run_id']}").json()
    expected = {**RunRecord(run_id="x", workflow_id="demo").as_dict(), "content": None}
    assert list(fetched) == list(expected)  # the same keys, in the same order
    assert fetched["output"] == fetched["content"] and fetched["status"] == "completed"
    extra = RunBody.model_validate({**fetched, "a_new_field": 1}).model_dump()
    assert extra["a_new_field"] == 1  # a field a route adds is passed on, not dropped
