"""Authentication and per-user isolation over HTTP, SSE and WebSocket, against a real server.

Two users (alice, bob) hold HS256 JWTs; the security key is an admin. Every way
of reaching another user's run must answer exactly as for a run that does not exist.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from runstream import AuthConfig, HumanReview, Step, Workflow
from runstream.errors import AuthConfigError, Forbidden
from runstream.log.base import RunRecord
from runstream.server.access import Access
from runstream.server.auth import ANONYMOUS, Principal, principal_from_claims
from tests.authkit import SECRET, bearer, jwt_server, token
from tests.conftest import RunningServer
from tests.runkit import Valve, demo_workflow, parse_sse, valve_workflow
from tests.waiting import wait_until
from tests.wsclient import indices, read_run, recv, send

ALICE, BOB, ADMIN = token("alice"), token("bob"), token("root", scopes=["agent_os:admin"])
NOBODY = "00000000-0000-0000-0000-000000000000"


def ship(step_input: object) -> str:
    return "shipped"


def confirm_workflow() -> Workflow:
    """One step that waits for a confirmation: a run that stays paused until answered."""
    return Workflow(id="confirm", name="Confirm", steps=[
        Step(name="Ship", executor=ship, human_review=HumanReview(requires_confirmation=True)),
    ])


@pytest.fixture
def srv(tmp_path: Path, valve: Valve) -> Iterator[RunningServer]:
    with jwt_server(tmp_path, [demo_workflow(), valve_workflow(valve), confirm_workflow()]) as running:
        yield running


@pytest.fixture
def http(srv: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.http_url, timeout=30) as client:
        yield client


def start(http: httpx.Client, who: str, workflow: str = "demo", **fields: str) -> dict:
    response = http.post(f"/workflows/{workflow}/runs", data={"message": "hi", "background": "true", **fields},
                         headers=bearer(who))
    assert response.status_code == 202, response.text
    return response.json()


def same_as_missing(response: httpx.Response, missing: httpx.Response, run_id: str) -> None:
    """``response`` (for ``run_id``) is ``missing`` (for NOBODY) but for the id in the text."""
    assert response.status_code == missing.status_code, response.text
    assert response.headers.get("content-type") == missing.headers.get("content-type")
    assert response.text.replace(run_id, NOBODY) == missing.text


# -- pure rules --------------------------------------------------------------


def test_claims_give_the_user_and_scopes_from_either_claim() -> None:
    config = AuthConfig(jwt_secret=SECRET, user_isolation=True)
    p = principal_from_claims({"sub": "ana", "scopes": ["workflows:run"], "scope": "sessions:read x"}, config)
    assert p.user_id == "ana" and p.scopes == {"workflows:run", "sessions:read", "x"} and not p.admin
    assert principal_from_claims({"scope": "agent_os:admin"}, config).admin  # an admin needs no user
    with pytest.raises(Forbidden, match="missing a user identity"):
        principal_from_claims({"scopes": ["workflows:run"]}, config)
    other = AuthConfig(jwt_secret=SECRET, user_claim="email")
    assert principal_from_claims({"sub": "1", "email": "a@x"}, other).user_id == "a@x"


def test_settings_that_would_not_protect_are_refused() -> None:
    with pytest.raises(AuthConfigError, match="needs JWT"):
        AuthConfig(security_key="k", user_isolation=True).check()
    with pytest.raises(AuthConfigError, match="one of"):
        AuthConfig(jwt_secret=SECRET, jwt_jwks_url="http://x").check()
    with pytest.raises(AuthConfigError, match="too short"):
        AuthConfig(jwt_secret="short").check()


def test_scopes_and_ownership_rules() -> None:
    access = Access(user_isolation=True)
    run = RunRecord(run_id="r", workflow_id="w", user_id="ana")
    ana = Principal("ana", frozenset({"workflows:w:run"}), via="jwt")
    reader = Principal("ana", frozenset({"workflows:read"}), via="jwt")
    bo = Principal("bo", frozenset({"workflows:run"}), via="jwt")
    assert access.may_read(ana, run) and access.may_read(reader, run) and not access.may_read(bo, run)
    assert access.may_read(ANONYMOUS, run) and access.may_read(Principal(None, admin=True, via="jwt"), run)
    assert not access.may_read(Principal("ana", frozenset({"workflows:v:run"}), via="jwt"), run)
    with pytest.raises(Forbidden):
        access.steerable(reader, run, "r")  # reads it, may not cancel it
    assert access.run_owner(bo, "ana") == "bo" and access.run_owner(ANONYMOUS, "ana") == "ana"
    assert access.list_filter(bo, "ana") == (True, None) and access.list_filter(bo, None) == (False, "bo")
    assert Access(user_isolation=False).may_read(bo, run)


# -- HTTP ----------------------------------------------------------------------


def test_nothing_but_health_and_docs_answers_without_a_token(http: httpx.Client) -> None:
    for path in ("/health", "/docs", "/openapi.json"):
        assert http.get(path).status_code == 200, path
    for method, path in [("GET", "/workflows"), ("GET", "/runs"), ("GET", "/sessions"), ("GET", f"/runs/{NOBODY}"),
                         ("POST", "/workflows/demo/runs"), ("POST", f"/runs/{NOBODY}/stream-token"),
                         ("GET", f"/workflows/demo/runs/{NOBODY}/events")]:
        response = http.request(method, path)
        assert response.status_code == 401 and response.json()["code"] == "unauthorized", (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    for bad in ("nonsense", token(secret="another-secret-of-32-bytes-or-more"), token(ttl=-60)):
        assert http.get("/runs", headers=bearer(bad)).status_code == 401
    assert http.get("/runs", headers=bearer(token(ttl=-60))).json()["code"] == "token_expired"
    no_user = http.get("/runs", headers=bearer(token(sub=None)))
    assert no_user.status_code == 403 and no_user.json()["code"] == "forbidden"
    assert http.get("/runs", headers=bearer(token(scopes=None))).json()["code"] == "forbidden"
    assert http.get("/runs", headers=bearer("admin-key")).status_code == 200


def test_another_users_run_answers_as_a_missing_one_over_http(http: httpx.Client, valve: Valve) -> None:
    run = start(http, ALICE, "valve", user_id="bob")  # the client's user_id does not override the token's
    run_id = run["run_id"]
    assert run["user_id"] == "alice"
    routes = [("GET", "/runs/{id}"), ("GET", "/workflows/valve/runs/{id}"), ("GET", "/workflows/valve/runs/{id}/events"),
              ("POST", "/workflows/valve/runs/{id}/resume"), ("POST", "/workflows/valve/runs/{id}/cancel"),
              ("POST", "/runs/{id}/stream-token"), ("POST", "/workflows/valve/runs/{id}/stream-token")]
    for method, path in routes:
        theirs = http.request(method, path.format(id=run_id), headers=bearer(BOB))
        missing = http.request(method, path.format(id=NOBODY), headers=bearer(BOB))
        assert missing.status_code == 404 and missing.json()["code"] == "unknown_run", missing.text
        same_as_missing(theirs, missing, run_id)
    assert http.get(f"/runs/{run_id}", headers=bearer(ALICE)).json()["status"] == "running"
    assert http.get(f"/runs/{run_id}", headers=bearer(ADMIN)).status_code == 200
    assert http.get(f"/workflows/demo/runs/{run_id}", headers=bearer(ALICE)).status_code == 404  # wrong workflow
    valve.open()
    assert http.post(f"/workflows/valve/runs/{run_id}/cancel", headers=bearer(BOB)).status_code == 404


def paused_run(http: httpx.Client, who: str) -> tuple[str, str]:
    """A run of ``who`` paused for its confirmation: its id and the answer that confirms it."""
    run_id = start(http, who, "confirm")["run_id"]
    wait_until(lambda: http.get(f"/runs/{run_id}", headers=bearer(who)).json()["status"] == "paused",
               what="the run to pause")
    requirement = http.get(f"/runs/{run_id}", headers=bearer(who)).json()["step_requirements"][0]
    return run_id, json.dumps([{"step_id": requirement["step_id"], "confirmed": True}])


def test_another_users_paused_run_answers_a_continue_as_a_missing_one(http: httpx.Client) -> None:
    run_id, answer = paused_run(http, ALICE)
    form = {"step_requirements": answer, "stream": "false"}
    theirs = http.post(f"/workflows/confirm/runs/{run_id}/continue", data=form, headers=bearer(BOB))
    missing = http.post(f"/workflows/confirm/runs/{NOBODY}/continue", data=form, headers=bearer(BOB))
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_run", missing.text
    same_as_missing(theirs, missing, run_id)
    assert http.get(f"/runs/{run_id}", headers=bearer(ALICE)).json()["status"] == "paused"
    mine = http.post(f"/workflows/confirm/runs/{run_id}/continue", data=form, headers=bearer(ALICE))
    assert mine.status_code == 200 and mine.json()["status"] == "COMPLETED", mine.text


def test_listings_show_each_user_their_own(http: httpx.Client) -> None:
    mine, theirs = start(http, ALICE, session_id="s-alice"), start(http, BOB, session_id="s-bob")
    wait_until(lambda: all(http.get(f"/runs/{r['run_id']}", headers=bearer("admin-key")).json()["status"] == "completed"
                           for r in (mine, theirs)), what="both runs to finish")
    for path in ("/runs", "/workflows/demo/runs"):
        assert [r["run_id"] for r in http.get(path, headers=bearer(ALICE)).json()] == [mine["run_id"]]
        assert http.get(path, params={"user_id": "bob"}, headers=bearer(ALICE)).json() == []
        assert len(http.get(path, headers=bearer(ADMIN)).json()) == 2
    assert [s["session_id"] for s in http.get("/sessions", headers=bearer(BOB)).json()["data"]] == ["s-bob"]
    assert http.get("/sessions", params={"user_id": "alice"}, headers=bearer(BOB)).json()["data"] == []
    assert len(http.get("/sessions", headers=bearer(ADMIN)).json()["data"]) == 2
    for path in ("/sessions/{s}", "/sessions/{s}/runs"):  # another user's session is a missing one
        other = http.get(path.format(s="s-alice"), headers=bearer(BOB))
        missing = http.get(path.format(s="nope"), headers=bearer(BOB))
        assert other.status_code == missing.status_code == 404
        assert other.text.replace("s-alice", "nope") == missing.text
    assert http.get(f"/sessions/s-alice/runs/{mine['run_id']}", headers=bearer(BOB)).status_code == 404
    assert http.delete("/sessions/s-alice", headers=bearer(BOB)).status_code == 404
    assert http.get("/sessions/s-alice", headers=bearer(ALICE)).status_code == 200  # still there
    missing = http.get("/sessions/nope", headers=bearer(BOB))
    other = http.get("/sessions/s-alice", headers=bearer(BOB))
    assert other.status_code == missing.status_code == 404
    assert other.text.replace("s-alice", "nope") == missing.text
    refused = http.post("/workflows/demo/runs", data={"message": "x", "session_id": "s-alice", "background": "true"},
                        headers=bearer(BOB))  # joining another user's session would read its history
    assert refused.status_code == 404 and refused.json()["code"] == "unknown_session"


def test_scopes_are_checked_per_workflow(http: httpx.Client) -> None:
    only_demo = token("carol", scopes="workflows:demo:run")
    reader = token("carol", scopes=["workflows:read"])
    assert [w["id"] for w in http.get("/workflows", headers=bearer(only_demo)).json()] == ["demo"]
    refused = http.post("/workflows/valve/runs", data={"message": "x"}, headers=bearer(only_demo))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert "workflows:valve:run" in refused.json()["detail"]
    run = start(http, only_demo)
    assert http.get(f"/runs/{run['run_id']}", headers=bearer(reader)).status_code == 200
    assert http.post("/workflows/demo/runs", data={"message": "x"}, headers=bearer(reader)).status_code == 403


# -- SSE stream tokens -----------------------------------------------------------


def test_a_stream_token_follows_one_run_and_nothing_else(http: httpx.Client) -> None:
    run_id = start(http, ALICE)["run_id"]
    other_id = start(http, ALICE)["run_id"]
    minted = http.post(f"/runs/{run_id}/stream-token", headers=bearer(ALICE)).json()
    assert minted["expires_at"] <= time.time() + 301 and minted["run_id"] == run_id
    events = parse_sse(http.get(minted["events_url"]).text)
    assert [int(e["id"]) for e in events] == list(range(len(events))) and events[-1]["event"] == "WorkflowCompleted"
    stream_token = minted["token"]
    for response in (http.get(f"/workflows/demo/runs/{other_id}/events", params={"token": stream_token}),
                     http.get("/runs", headers=bearer(stream_token)),
                     http.get(f"/workflows/demo/runs/{run_id}/events", params={"token": ALICE}),  # never a user's token
                     http.get(f"/workflows/demo/runs/{run_id}/events", params={"token": "admin-key"})):
        assert response.status_code == 401, response.text
    bob = http.get(f"/workflows/demo/runs/{run_id}/events", headers=bearer(BOB))
    assert bob.status_code == 404


def test_an_sse_stream_ends_at_its_tokens_expiry_and_resumes_with_a_fresh_one(
    http: httpx.Client, valve: Valve
) -> None:
    run_id = start(http, ALICE, "valve")["run_id"]
    short = token("alice", ttl=2)
    with http.stream("GET", f"/workflows/valve/runs/{run_id}/events", headers=bearer(short)) as response:
        body = response.read().decode()  # ends by itself at the expiry, the run still held at its valve
    first = parse_sse(body)
    assert body.endswith(": token expired; resume with Last-Event-ID and a fresh token\n\n")
    assert [int(e["id"]) for e in first] == list(range(len(first))) and first
    valve.open()
    again = http.get(f"/workflows/valve/runs/{run_id}/events",
                     headers={**bearer(ALICE), "Last-Event-ID": first[-1]["id"]})
    rest = parse_sse(again.text)
    assert [int(e["id"]) for e in first + rest] == list(range(len(first) + len(rest)))
    assert rest[-1]["event"] == "WorkflowCompleted"


# -- WebSocket -------------------------------------------------------------------

@pytest.mark.anyio
async def test_websocket_authentication_frames(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        assert (await recv(ws))["requires_auth"] is True
        await send(ws, action="start-workflow", workflow_id="demo", message="x")
        assert (await recv(ws))["code"] == "unauthorized"
        for bad, code in [("nonsense", "unauthorized"), (token(ttl=-60), "token_expired"),
                          (token(sub=None), "forbidden")]:
            await send(ws, action="authenticate", token=bad)
            answer = await recv(ws)
            assert answer["event"] == "auth_error" and answer["code"] == code, answer
        await send(ws, action="authenticate", token=ALICE)
        answer = await recv(ws)
        assert answer["event"] == "authenticated" and answer["user_id"] == "alice" and answer["expires_at"]


@pytest.mark.anyio
async def test_another_users_run_answers_as_a_missing_one_over_websocket(srv: RunningServer, valve: Valve) -> None:
    async with connect(srv.ws_url) as alice, connect(srv.ws_url) as bob:
        for ws, who in ((alice, ALICE), (bob, BOB)):
            await recv(ws)
            await send(ws, action="authenticate", token=who)
            assert (await recv(ws))["event"] == "authenticated"
        await send(alice, action="start-workflow", workflow_id="valve", message="x", user_id="bob")
        _, first = await read_run(alice, limit=3)
        run_id = first[0]["run_id"]
        answers = {}
        for target in (run_id, NOBODY):
            await send(bob, action="reconnect", run_id=target, last_event_index=-1)
            reconnect = await recv(bob)
            await send(bob, action="cancel-workflow", run_id=target)
            cancel = await recv(bob)
            answers[target] = [reconnect, cancel]
        assert str(answers[run_id]).replace(run_id, NOBODY) == str(answers[NOBODY])
        assert answers[NOBODY][0] == {"event": "error", "error": f"Run {NOBODY} not found", "code": "unknown_run"}
        valve.open()
        _, rest = await read_run(alice)
        assert indices(first + rest) == list(range(len(first) + len(rest)))
    with httpx.Client(base_url=srv.http_url) as http:
        assert http.get(f"/runs/{run_id}", headers=bearer(ADMIN)).json()["user_id"] == "alice"


@pytest.mark.anyio
async def test_another_users_paused_run_answers_a_websocket_continue_as_a_missing_one(srv: RunningServer) -> None:
    with httpx.Client(base_url=srv.http_url, timeout=30) as http:
        run_id, answer = paused_run(http, ALICE)
    async with connect(srv.ws_url) as bob:
        await recv(bob)
        await send(bob, action="authenticate", token=BOB)
        assert (await recv(bob))["event"] == "authenticated"
        answers = {}
        for target in (run_id, NOBODY):
            await send(bob, action="continue-workflow", run_id=target, step_requirements=json.loads(answer))
            answers[target] = await recv(bob)
    assert answers[NOBODY] == {"event": "error", "error": f"Run {NOBODY} not found", "code": "unknown_run"}
    assert str(answers[run_id]).replace(run_id, NOBODY) == str(answers[NOBODY])
    with httpx.Client(base_url=srv.http_url) as http:
        assert http.get(f"/runs/{run_id}", headers=bearer(ALICE)).json()["status"] == "paused"


@pytest.mark.anyio
async def test_a_socket_whose_token_expires_pauses_until_it_authenticates_again(
    srv: RunningServer, valve: Valve
) -> None:
    async with connect(srv.ws_url) as ws:
        await recv(ws)
        await send(ws, action="authenticate", token=token("alice", ttl=2))
        assert (await recv(ws))["event"] == "authenticated"
        await send(ws, action="start-workflow", workflow_id="valve", message="x")
        _, first = await read_run(ws, limit=3)
        run_id = first[0]["run_id"]
        seen = list(first)
        while True:  # the run is held at its valve: what follows is the expiry notice
            message = await recv(ws)
            if "event_index" in message:
                seen.append(message)
                continue
            assert message == {"event": "auth_error", "error": "Token has expired: authenticate again to go on",
                               "code": "token_expired"}
            break
        valve.open()
        await asyncio.to_thread(
            wait_until, lambda: httpx.get(f"{srv.http_url}/runs/{run_id}", headers=bearer("admin-key")).json()["status"]
            == "completed", 20, "the run to end")
        await send(ws, action="ping")
        assert (await recv(ws)) == {"event": "pong"}  # no event was sent while unauthenticated
        await send(ws, action="reconnect", run_id=run_id, last_event_index=-1)
        assert (await recv(ws))["code"] == "unauthorized"
        await send(ws, action="authenticate", token=ALICE)
        controls, rest = await read_run(ws)
        assert controls[0]["event"] == "authenticated"
        assert indices(seen + rest) == list(range(len(seen) + len(rest))) and rest[-1]["event"] == "WorkflowCompleted"
