"""The recorded log of a run of every step kind and its pauses (``tests/recorded_run.py``): a
fresh run logs the same events, the recovery fold reads its completions and answers, a run
resumed after any of its events ends as it did, and the log replays byte for byte over
WebSocket and SSE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from runstream import RunRecord, RunStatus, Server, SQLiteLog
from runstream.events import COMPLETION_EVENTS, STEP_STARTED
from runstream.log.base import RunEnd
from runstream.runs.recovery import fold_resume_plan
from tests.conftest import serve_in_thread
from tests.enginekit import context
from tests.hitlkit import Leg, answer
from tests.recorded_run import MESSAGE, answer_to, every_kind, load, record, stored
from tests.wsclient import read_run, recv, send

pytestmark = pytest.mark.anyio

_TIMES = frozenset({"created_at", "created_at_ms", "duration"})
_IDS = frozenset(
    {"run_id", "session_id", "step_id", "parent_step_id", "agent_run_id", "workflow_run_id", "requirement_id",
     "executor_run_id"}
)


def normalized(events: list[dict[str, Any]]) -> list[Any]:
    """The events with what differs between two runs of the same workflow (ids, times) made
    placeholders: ids numbered in the order they first appear, so their links stay checked."""
    ids: dict[str, str] = {}

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in _IDS and isinstance(item, str):
                    ids.setdefault(item, f"<{key} {len(ids)}>")
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    def scrub(value: Any, key: str | None = None) -> Any:
        if key in _TIMES and isinstance(value, (int, float, str)):  # epoch seconds, milliseconds, ISO 8601
            return "<time>"
        if isinstance(value, dict):
            return {k: scrub(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return ids.get(value, value) if isinstance(value, str) else value

    collect(events)
    return [scrub(event) for event in events]


async def test_a_run_of_every_kind_logs_what_the_recording_holds(tmp_path: Path) -> None:
    """The pin: any change to the events a run logs (names, fields, their order, content)
    fails here until the fixture is recorded again (``python -m tests.recorded_run``)."""
    fresh = await record(tmp_path / "fresh.db")
    recorded = load()
    assert [e["event"] for e in fresh] == [e["event"] for e in recorded]
    for now, then in zip(normalized(fresh), normalized(recorded)):
        assert list(now) == list(then) and now == then


def test_the_recording_has_every_step_kind() -> None:
    names = {e["event"] for e in load()}
    assert {
        "StepStarted", "StepCompleted", "StepOutput", "RunContent", "StepRetry", "RunStarted", "RunCompleted",
        "ToolCallStarted", "ToolCallCompleted", "StepsExecutionStarted", "StepsExecutionCompleted",
        "ParallelExecutionStarted", "ParallelExecutionCompleted", "ConditionExecutionStarted",
        "ConditionExecutionCompleted", "LoopExecutionStarted", "LoopIterationStarted", "LoopIterationCompleted",
        "LoopExecutionCompleted", "RouterExecutionStarted", "RouterExecutionCompleted", "WorkflowCompleted",
        "StepPaused", "StepOutputReview", "StepExecutorPaused", "WorkflowPaused", "StepContinued",
        "StepExecutorContinued",
    } <= names  # fmt: skip


def test_the_recovery_fold_reads_every_completion_of_the_recording() -> None:
    events = load()
    plan = fold_resume_plan(stored(events))
    completions = [e for e in events if e["event"] in COMPLETION_EVENTS]
    assert set(plan.completed) == {e["step_path"] for e in completions}
    for event in completions:
        output = plan.completed[event["step_path"]]
        assert (output.content, output.success, output.error, output.stop) == (
            event["content"], event["success"], event["error"], event["stop"]
        )
    assert plan.interrupted == [] and plan.next_index == len(events)
    assert len(plan.resolutions) == sum(e["event"] == "WorkflowPaused" for e in events) == 6
    assert [child.step_name for child in plan.completed["4"].steps] == ["first", "Fan"]  # composites get their children
    assert [child.step_name for child in plan.completed["6"].steps] == ["pick-a"]  # the router's last attempt's
    paused = [e["step_requirements"] for e in events if e["event"] == "WorkflowPaused"]
    assert [len(p) for p in paused] == [1, 2, 3, 4, 5, 6]  # each pause lists the answered ones before it
    assert plan.answered[:-1] == paused[-1][:-1] and plan.answered[-1]["requirement_id"] == paused[-1][-1]["requirement_id"]
    assert plan.waiting is None and [r.get("confirmed") for r in plan.answered] == [False, None, True, True, True, None]
    assert [e.get("confirmation") for e in plan.answered[-1]["executor_requirements"]] == [True]  # per tool call


@pytest.mark.parametrize("cut", range(1, len(load())))
async def test_a_run_resumed_after_any_event_of_the_recording_ends_as_it_did(cut: int) -> None:
    """What crash recovery does, after each event: fold the log so far, resume the workflow
    with it, answer its pauses as they were answered; nothing completed runs again, a step
    interrupted before its answer runs again, and the run ends with the recorded output."""
    events = load()
    plan = fold_resume_plan(stored(events[:cut]))
    leg = Leg(every_kind(), MESSAGE)
    leg.events = [(e["event"], e) for e in events[:cut]]
    ctx = context(leg.events, plan.completed)
    ctx.started_steps, ctx.resolutions, ctx.answered = plan.started, plan.resolutions, plan.answered
    await leg.workflow.run(ctx, MESSAGE, resumed=True)
    while leg.paused:
        await leg.cont(answer(leg, **answer_to(leg.events[-2][0], leg.last[1]["step_requirements"][-1])))
    resumed = leg.events[cut:]
    restarted = {fields["step_path"] for name, fields in resumed if name == STEP_STARTED}
    assert not restarted & set(plan.completed)
    answered = {r.step_path for r in plan.resolutions.values()}
    assert {step.path for step in plan.interrupted if step.leaf and step.path not in answered} <= restarted
    assert resumed[-1][0] == "WorkflowCompleted" and resumed[-1][1]["content"] == events[-1]["content"]
    lists = [fields["step_requirements"] for name, fields in resumed if name == "WorkflowPaused"]
    recorded = [e["step_requirements"] for e in events if e["event"] == "WorkflowPaused"]
    assert [[(r["kind"], r["step_path"], r["confirmed"]) for r in p] for p in lists] == [
        [(r["kind"], r["step_path"], r["confirmed"]) for r in p] for p in recorded[len(recorded) - len(lists):]
    ]  # each pause lists the answered ones before it, wherever the run was resumed


async def _logged(db: Path) -> str:
    """The recording written to a fresh log as a finished run; its run id."""
    events = load()
    first = events[0]
    log = SQLiteLog(db)
    await log.open()
    try:
        await log.create_run(
            RunRecord(first["run_id"], first["workflow_id"], first["workflow_name"], first["session_id"], input=MESSAGE)
        )
        end = RunEnd(RunStatus.COMPLETED, output=events[-1]["content"])
        await log.append({first["run_id"]: (stored(events), end)})
    finally:
        await log.close()
    return str(first["run_id"])


async def test_the_recording_replays_byte_for_byte_over_websocket_and_sse(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = await _logged(db)
    texts = [orjson.dumps(e).decode() for e in load()]
    with serve_in_thread(Server(workflows=[every_kind()], database_url=f"sqlite:///{db}")) as srv:
        async with connect(srv.ws_url) as ws:
            assert (await recv(ws))["event"] == "connected"
            await send(ws, action="reconnect", run_id=run_id, last_event_index=None)
            notice = await recv(ws)
            _, replayed = await read_run(ws)
        assert notice["event"] == "replay" and notice["total_events"] == len(texts)
        assert replayed == load()
        async with httpx.AsyncClient(base_url=srv.http_url, timeout=30) as http:
            body = (await http.get(f"/workflows/every-kind/runs/{run_id}/events")).text
    data = [line.removeprefix("data: ") for line in body.split("\n") if line.startswith("data: ")]
    assert data == texts
