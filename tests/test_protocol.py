"""The sans-I/O protocol core: action parsing and reconnect planning, no server needed."""

from __future__ import annotations

import json

import pytest

from runstream import InvalidRequest, ProtocolError, RunRecord
from runstream.server.protocol import Reconnect, StartWorkflow, parse_action, plan_reconnect


def run(status: str) -> RunRecord:
    return RunRecord(run_id="r1", workflow_id="w", status=status)


def test_parse_start_workflow_keeps_optional_fields() -> None:
    action = parse_action(json.dumps({"action": "start-workflow", "workflow_id": "w", "message": "hi", "session_id": "s"}))
    assert isinstance(action, StartWorkflow)
    assert (action.workflow_id, action.message, action.session_id, action.user_id) == ("w", "hi", "s", None)


def test_reconnect_index_must_be_an_integer_not_a_bool_or_float() -> None:
    assert isinstance(parse_action('{"action":"reconnect","run_id":"r","last_event_index":null}'), Reconnect)
    for bad in ("true", "1.5", '"3"'):
        with pytest.raises(ProtocolError, match="last_event_index"):
            parse_action('{"action":"reconnect","run_id":"r","last_event_index":%s}' % bad)


@pytest.mark.parametrize("status", ["completed", "error", "cancelled"])
def test_finished_run_replays_everything_whatever_the_index(status: str) -> None:
    plan = plan_reconnect(run(status), last_event_index=10, current_count=42)
    notice = json.loads(plan.notice)
    assert notice["event"] == "replay" and notice["status"] == status and notice["total_events"] == 42
    assert plan.after == -1 and plan.subscribed is None


def test_running_run_with_missed_events_catches_up_then_subscribes() -> None:
    plan = plan_reconnect(run("running"), last_event_index=9, current_count=25)
    notice = json.loads(plan.notice)
    assert notice["event"] == "catch_up" and notice["missed_events"] == 15 and notice["current_event_count"] == 25
    assert plan.after == 9 and plan.subscribe_after == 24
    assert json.loads(plan.subscribed or "{}")["event"] == "subscribed"


@pytest.mark.parametrize("last", [None, -1])
def test_running_run_from_the_start(last: int | None) -> None:
    plan = plan_reconnect(run("running"), last_event_index=last, current_count=7)
    assert json.loads(plan.notice)["missed_events"] == 7 and plan.after == -1


def test_running_run_without_missed_events_subscribes_at_once() -> None:
    plan = plan_reconnect(run("running"), last_event_index=6, current_count=7)
    assert json.loads(plan.notice)["event"] == "subscribed" and plan.after == 6 and plan.subscribed is None


@pytest.mark.parametrize("last", [7, 100, -2])
def test_running_run_rejects_an_index_it_has_not_reached(last: int) -> None:
    with pytest.raises(InvalidRequest, match="out of range") as refused:
        plan_reconnect(run("running"), last_event_index=last, current_count=7)
    assert refused.value.code == "invalid_request"  # the code HTTP gives the same mistake
