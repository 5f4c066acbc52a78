"""Random and malformed frames and requests on many connections, while a run streams to a good client.

The server answers each with an error that has a code (or ignores it), never a 5xx, never
crashes; the attacker never sees the victim's run; the good client gets every event once.
Bounded: a few dozen examples of a few inputs each.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import websockets.asyncio.client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from runstream import Limits
from tests.authkit import bearer, jwt_server, token
from tests.runkit import Valve, valve_workflow
from tests.wsclient import indices, parse, recv, send

ALICE, BOB = token("alice"), token("bob")
ACTIONS = ["authenticate", "ping", "start-workflow", "reconnect", "cancel-workflow", "continue", "", "PING", "start"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63 - 2, max_value=2**70), st.floats(),
    st.text(max_size=30), st.sampled_from(["\u0000", "\ufeff", "\U0001f600" * 5, "../../etc", "' OR 1=1 --"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                      max_leaves=8)


def tokens(victim_run: str) -> st.SearchStrategy[Any]:
    return st.sampled_from([BOB, token("bob", ttl=-120), token("bob", secret="an-attackers-secret-of-32-bytes!!"),
                            token(None), "admin-key?", "", "a.b.c", victim_run]) | st.text(max_size=40) | values


def frames(victim_run: str) -> st.SearchStrategy[Any]:
    run_ids = st.sampled_from([victim_run, "nope", "", "0" * 36]) | values
    shaped = st.one_of(
        st.fixed_dictionaries({"action": st.just("authenticate"), "token": tokens(victim_run)}),
        st.fixed_dictionaries({"action": st.just("reconnect"), "run_id": run_ids,
                               "last_event_index": st.integers() | values}),
        st.fixed_dictionaries({"action": st.just("cancel-workflow"), "run_id": run_ids}),
        st.fixed_dictionaries({"action": st.just("start-workflow"), "workflow_id": st.sampled_from(["valve", "x"]) | values,
                               "message": values, "user_id": st.just("alice") | values, "session_id": values}),
        st.dictionaries(st.sampled_from(["action", "run_id", "token", "workflow_id", "x"]),
                        st.sampled_from(ACTIONS) | values, max_size=4),
    )
    return st.one_of(
        shaped.map(lambda d: json.dumps(d, allow_nan=True)),
        st.binary(max_size=64),
        st.text(max_size=100),
        st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n),
        st.just('{"action": "ping", "pad": "' + "x" * 70_000 + '"}'),
    )


def requests(victim_run: str) -> st.SearchStrategy[dict[str, Any]]:
    paths = st.sampled_from([
        "/runs", "/runs/{r}", "/workflows/valve/runs/{r}", "/workflows/valve/runs/{r}/events", "/sessions",
        "/workflows/valve/runs/{r}/resume", "/workflows/valve/runs/{r}/cancel", "/runs/{r}/stream-token",
        "/workflows/valve/runs", "/workflows/%00", "/sessions/{r}", "/workflows/valve/runs/{r}/events?token={r}",
    ])
    return st.fixed_dictionaries({
        "method": st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
        "path": paths.map(lambda p: p.replace("{r}", victim_run)),
        "token": tokens(victim_run).map(str),
        "params": st.dictionaries(st.sampled_from(["offset", "limit", "user_id", "last_event_id", "status", "token"]),
                                  st.integers().map(str) | st.text(max_size=20), max_size=3),
        "last_event_id": st.none() | st.integers().map(str) | st.text(max_size=10),
        "body": st.none() | values.map(lambda v: json.dumps({"message": v}, allow_nan=True)) | st.binary(max_size=100).map(
            lambda b: b.decode("latin-1")) | st.integers(1, 2000).map(lambda n: '{"message": ' + "[" * n + "]" * n + "}"),
    })


def check_http(http: httpx.Client, request: dict[str, Any], victim_run: str) -> None:
    headers = {"Authorization": f"Bearer {request['token']}".strip()}
    if request["last_event_id"] is not None:
        headers["Last-Event-ID"] = request["last_event_id"]
    if request["body"] is not None:
        headers["Content-Type"] = "application/json"
    try:
        response = http.request(request["method"], request["path"], params=request["params"], headers=headers,
                                content=request["body"], timeout=10)
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        return  # the client itself refused to send it
    assert response.status_code < 500, (request, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert body["code"] and body["detail"], body
    else:
        assert victim_run not in response.text, response.text  # bob never learns anything of alice's run
        assert '"user_id":"alice"' not in response.text.replace(" ", ""), response.text


def check_socket(ws: ClientConnection, frame: Any, victim_run: str) -> None:
    """Send ``frame``, then a ping; everything until the pong must be harmless."""
    ws.send(frame)
    ws.send('{"action": "ping"}')
    while True:
        message = parse(ws.recv(timeout=20))
        if message.get("event") == "pong":
            return
        if message.get("event") in ("error", "auth_error"):
            assert message["code"], message
        assert not ("event_index" in message and message.get("run_id") == victim_run), message


def test_fuzzed_frames_and_requests_never_break_the_server_nor_the_good_client(tmp_path: Path, valve: Valve) -> None:
    limits = Limits(runs_per_minute=1000, max_runs_per_user=50, max_message_size=64 * 1024)
    with jwt_server(tmp_path, [valve_workflow(valve, before=20, after=200)], limits=limits) as srv:
        victim: dict[str, Any] = {}
        started = threading.Event()

        async def good_client() -> None:
            async with websockets.asyncio.client.connect(srv.ws_url) as ws:
                await recv(ws)
                await send(ws, action="authenticate", token=ALICE)
                await recv(ws)
                await send(ws, action="start-workflow", workflow_id="valve", message="secret prompt")
                events: list[dict[str, Any]] = []
                while not events or events[-1]["event"] != "WorkflowCompleted":
                    message = await recv(ws, timeout=600)  # the run is held at its valve while the fuzzing lasts
                    assert "event_index" in message, message
                    events.append(message)
                    victim["run_id"] = message["run_id"]
                    started.set()
                victim["events"] = events

        thread = threading.Thread(target=lambda: asyncio.run(good_client()), daemon=True)
        thread.start()
        assert started.wait(30)
        victim_run = victim["run_id"]

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(st.lists(frames(victim_run), min_size=1, max_size=6), st.lists(requests(victim_run), max_size=3),
               st.booleans())
        def attack(sent: list[Any], calls: list[dict[str, Any]], authenticated: bool) -> None:
            with connect(srv.ws_url, max_size=2**20) as ws, httpx.Client(base_url=srv.http_url) as http:
                parse(ws.recv(timeout=20))
                if authenticated:
                    ws.send(json.dumps({"action": "authenticate", "token": BOB}))
                    assert parse(ws.recv(timeout=20))["event"] == "authenticated"
                for frame in sent:
                    try:
                        check_socket(ws, frame, victim_run)
                    except ConnectionClosed:
                        return  # closed for a limit, with a code: a new connection is fine
                for call in calls:
                    check_http(http, call, victim_run)

        attack()
        valve.open()
        thread.join(60)
        events = victim["events"]
        assert indices(events) == list(range(len(events))) and events[-1]["event"] == "WorkflowCompleted"
        with httpx.Client(base_url=srv.http_url) as http:
            assert http.get("/health").status_code == 200
            assert http.get(f"/runs/{victim_run}", headers=bearer(BOB)).status_code == 404
