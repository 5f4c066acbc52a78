"""AgentOS's own Python client (``agno.client.AgentOSClient``, agno 3.1.10) against a runstream server.

Run by the Python of a virtual environment that has agno (never runstream's):

    python client_checks.py '[{"url": "http://127.0.0.1:PORT", "key": null, ...}, ...]'

Every check calls the client as a new user would and asserts what it gets
back; every event the server sends is parsed with agno's own parser and
compared field by field with its JSON. For each server, prints one JSON
object (``passed``, ``failed`` with tracebacks, ``seconds``, ``events``: per event
name, the fields agno does not read) and exits 1 if a check failed. ``tests/test_agentos_compat.py`` drives it.

``check_continue`` answers a run of every pause kind (the cookbook's
``cookbook/hitl`` examples, each with the answers it documents) as an agno user
does: the paused event's ``step_requirements``, the active one filled in, sent
back with ``continue_workflow_run_stream``; and one run through the blocking
``run_workflow`` and ``continue_workflow_run``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any

import httpx
from agno.client import AgentOSClient
from agno.db.base import SessionType
from agno.os.schema import WorkflowRunSchema, WorkflowSessionDetailSchema
from agno.run.agent import run_output_event_from_dict
from agno.run.workflow import (
    WorkflowCompletedEvent,
    WorkflowPausedEvent,
    WorkflowRunOutput,
    workflow_run_output_event_from_dict,
)
from agno.workflow.types import WorkflowMetrics

WORKFLOW = SessionType.WORKFLOW
AGENT_EVENTS = {"RunStarted", "RunContent", "RunCompleted", "ToolCallStarted", "ToolCallCompleted"}


def same_metrics(sent: dict[str, Any], parsed: dict[str, Any]) -> None:
    """agno's metrics ``to_dict`` drops zeros; every other number must be the one sent."""
    assert {k: v for k, v in sent.items() if v} == {k: v for k, v in parsed.items() if k in sent}, (sent, parsed)


class Checks:
    def __init__(self, params: dict[str, Any]) -> None:
        self.url: str = params["url"]
        self.key: str | None = params.get("key")
        self.params = params
        self.client = AgentOSClient(self.url, timeout=60)
        self.headers = {"Authorization": f"Bearer {self.key}"} if self.key else None
        self.http = httpx.AsyncClient(base_url=self.url, headers=self.headers or {}, timeout=60)
        self.events: dict[str, set[str]] = {}
        """Per event name seen, the JSON fields the parsed agno object has no field for."""
        self.runs: dict[str, WorkflowRunOutput] = {}

    # -- helpers -----------------------------------------------------------

    async def raw_events(self, workflow_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's events as JSON, replayed from the server's log (runstream's events endpoint)."""
        response = await self.http.get(f"/workflows/{workflow_id}/runs/{run_id}/events")
        response.raise_for_status()
        return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]

    @staticmethod
    def assert_unknown_to_agno(data: dict[str, Any]) -> None:
        """One of runstream's own events: agno's parser refuses it by name (its stream reader skips it)."""
        try:
            workflow_run_output_event_from_dict(dict(data))
        except ValueError as exc:
            assert "Unknown workflow event type" in str(exc)
        else:
            raise AssertionError(f"agno now knows {data['event']}: parse it as the others")

    def compare(self, data: dict[str, Any], parsed: Any) -> None:
        """Every JSON field the parsed object has must hold the same value; the others are noted."""
        assert parsed.event == data["event"], (parsed.event, data["event"])
        assert parsed.event_index == data["event_index"], (parsed.event_index, data["event_index"])
        names = {f.name for f in fields(parsed)}
        for key, value in data.items():
            if key == "event_index":
                continue
            if key not in names:
                if isinstance(getattr(type(parsed), key, None), property):  # StepOutput's content
                    assert getattr(parsed, key) == value, (data["event"], key, getattr(parsed, key), value)
                else:
                    self.events.setdefault(data["event"], set()).add(key)
                continue
            got = getattr(parsed, key)
            if key == "metrics":
                got = got.to_dict() if got is not None else None
                if isinstance(parsed, WorkflowCompletedEvent):
                    assert isinstance(parsed.metrics, WorkflowMetrics)
                    assert set(got["steps"]) == set(value["steps"]), (got, value)
                    for name, step in value["steps"].items():
                        mine = got["steps"][name]
                        assert {k: mine[k] for k in ("step_name", "executor_type", "executor_name")} == {
                            k: step[k] for k in ("step_name", "executor_type", "executor_name")}
                        same_metrics(step["metrics"], mine["metrics"])
                    assert got["duration"] == value["duration"]
                else:
                    same_metrics(value, got)
            elif key == "tool":
                for field in ("tool_call_id", "tool_name", "tool_args", "result", "tool_call_error"):
                    if field in value:
                        assert getattr(got, field) == value[field], (field, getattr(got, field), value[field])
            elif key == "step_output":
                assert (got.step_name, got.content, got.success) == (value["step_name"], value["content"], value["success"])
            elif key in ("step_requirements", "user_input_schema") and value is not None:  # lists of agno objects
                assert len(got) == len(value), (data["event"], key, got, value)
                for mine, sent in zip(got, value):
                    self.same_fields(f"{data['event']}.{key}", mine, sent)
            elif is_dataclass(got):
                raise AssertionError(f"{data['event']}.{key} is a {type(got).__name__} with no comparison here")
            else:
                assert got == value, (data["event"], key, got, value)

    def same_fields(self, where: str, parsed: Any, sent: dict[str, Any]) -> None:
        """A parsed agno dataclass (a ``StepRequirement``, a ``UserInputField``) holds the values
        sent, field by field: enums by value, ``timeout_at`` as the instant sent, nested objects
        by their ``to_dict``."""
        if isinstance(parsed, dict):  # an event's requirements stay JSON objects in agno
            assert parsed == sent, (where, parsed, sent)
            return
        names = {f.name for f in fields(parsed)}
        for key, value in sent.items():
            if key not in names:
                self.events.setdefault(where, set()).add(key)
                continue
            got = getattr(parsed, key)
            if key == "timeout_at" and value is not None:
                got, value = got.timestamp(), datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            elif key == "user_input_schema" and value is not None:
                for mine, field_sent in zip(got, value, strict=True):
                    self.same_fields(f"{where}.{key}", mine, field_sent)
                continue
            elif key == "step_output" and value is not None:
                got = (got.step_name, got.content, got.success)
                value = (value["step_name"], value["content"], value["success"])
            elif key == "step_input" and value is not None:
                got, value = got.input, value["input"]
            elif hasattr(got, "value") and not isinstance(got, (str, int)):  # an enum
                got = got.value
            assert got == value, (where, key, got, value)

    @staticmethod
    def answered(requirements: list[Any], answer: dict[str, Any]) -> list[dict[str, Any]]:
        """AgentOS's list back, its last (active) entry answered: what an agno user sends after
        ``req.confirm()``, ``req.set_user_input(...)`` or ``req.select(...)``."""
        entries = [dict(r) if isinstance(r, dict) else r.to_dict() for r in requirements]
        entries[-1].update(answer)
        return entries

    async def stream(self, workflow_id: str, message: str, session_id: str, user_id: str = "ana") -> list[Any]:
        events = []
        async for event in self.client.run_workflow_stream(
            workflow_id, message, session_id=session_id, user_id=user_id, headers=self.headers
        ):
            events.append(event)
        return events

    # -- checks --------------------------------------------------------------

    async def check_config(self) -> None:
        config = await self.client.aget_config(headers=self.headers)
        assert config.os_id == "runstream" and config.databases == ["runstream"]
        assert {w.id for w in config.workflows} == set(self.params["workflows"])
        assert self.client.get_config(headers=self.headers).os_id == "runstream"  # the sync form too

    async def check_workflows(self) -> None:
        listed = await self.client.list_workflows(headers=self.headers)
        assert [w.id for w in listed] == self.params["workflows"], [w.id for w in listed]
        one = await self.client.aget_workflow(self.params["agents"], headers=self.headers)
        assert one.id == self.params["agents"] and one.name and one.steps
        assert self.client.get_workflow(self.params["agents"], headers=self.headers).id == self.params["agents"]
        try:
            await self.client.aget_workflow("nope", headers=self.headers)
        except httpx.HTTPStatusError as exc:
            assert exc.response.status_code == 404
        else:
            raise AssertionError("an unknown workflow was found")

    async def check_run_workflow(self) -> None:
        run = await self.client.run_workflow(
            self.params["agents"], "tide pools at dawn", session_id="compat-a", user_id="ana", headers=self.headers
        )
        assert isinstance(run, WorkflowRunOutput) and run.run_id and isinstance(run.content, str) and run.content
        assert run.session_id == "compat-a" and run.workflow_id == self.params["agents"]
        assert isinstance(run.metrics, WorkflowMetrics) and set(run.metrics.steps) == set(self.params["agent_steps"])
        for step in run.metrics.steps.values():
            assert step.executor_type == "agent" and step.metrics is not None and step.metrics.total_tokens > 0
        self.runs["blocking"] = run

    async def check_every_event_parses(self) -> None:
        """Each workflow, streamed: agno parses every event (none skipped, none failed), and the
        parsed objects carry the JSON's values."""
        for workflow_id, message in self.params["examples"].items():
            streamed = await self.stream(workflow_id, message, f"walk-{workflow_id}", user_id="walker")
            assert streamed, workflow_id
            run_id = streamed[0].run_id
            raw = await self.raw_events(workflow_id, run_id)
            extensions = [e for e in raw if e["event"] in self.params["extensions"]]
            for data in extensions:  # runstream's own events: agno skips them, and the stream goes on
                self.assert_unknown_to_agno(data)
                self.events.setdefault(data["event"], set())
            raw = [e for e in raw if e not in extensions]
            assert [e.event for e in streamed] == [e["event"] for e in raw], (workflow_id, len(streamed), len(raw))
            assert [e.event_index for e in streamed] == [e["event_index"] for e in raw]
            for data, event in zip(raw, streamed):
                assert event.run_id == run_id and event.session_id == f"walk-{workflow_id}"
                self.compare(data, workflow_run_output_event_from_dict(dict(data)))
                self.compare(data, event)
                if data["event"] in AGENT_EVENTS:  # the agent events parse with agno's agent parser too
                    self.compare(data, run_output_event_from_dict(dict(data)))
            last = raw[-1]
            expected_end = self.params["ends"].get(workflow_id, "WorkflowCompleted")
            assert last["event"] == expected_end, (workflow_id, last["event"])
            self.events.setdefault(last["event"], set())
            for data in raw:
                self.events.setdefault(data["event"], set())

    async def check_cancel(self) -> None:
        waiting = self.params["waiting"]
        response = await self.http.post(
            f"/workflows/{waiting}/runs", data={"message": "hold", "background": "true", "session_id": "compat-c"}
        )
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
        await self.client.cancel_workflow_run(waiting, run_id, headers=self.headers)
        for _ in range(400):
            run = await self.client.get_session_run("compat-c", run_id, headers=self.headers)
            if run.status != "RUNNING":
                break
            await asyncio.sleep(0.05)
        assert isinstance(run, WorkflowRunSchema) and run.status == "CANCELLED", run.status
        assert run.cancellation_stage == "EXECUTING"
        raw = await self.raw_events(waiting, run_id)
        assert raw[-1]["event"] == "WorkflowCancelled"
        for data in raw:
            self.compare(data, workflow_run_output_event_from_dict(dict(data)))
            self.events.setdefault(data["event"], set())

    async def check_continue(self) -> None:
        """Every pause kind, run with ``run_workflow_stream`` and answered with
        ``continue_workflow_run_stream`` (an error pause's decision in ``error_requirements``,
        which agno passes on as a form field); the events of all legs are the run's log, each
        parsed by agno with the JSON's values. Then one pause through the blocking calls."""
        for workflow_id, case in self.params["paused"].items():
            session = f"pause-{workflow_id}"
            streamed = await self.stream(workflow_id, case["message"], session)
            run_id = streamed[0].run_id
            answers = list(case["answers"])
            while streamed[-1].event == "WorkflowPaused":
                paused = streamed[-1]
                assert isinstance(paused, WorkflowPausedEvent) and paused.is_paused, (workflow_id, paused)
                assert paused.step_requirements and paused.paused_step_name, (workflow_id, paused)
                assert answers, f"{workflow_id} paused more often than its answers say"
                answer, extra = answers.pop(0), {}
                if "decision" in answer:  # agno's requirements are sent as they are, the decision beside them
                    requirements = list(paused.step_requirements)
                    # the paused run's dict (its events' stream stays open for the continue's)
                    run = (await self.http.get(f"/workflows/{workflow_id}/runs/{run_id}")).json()
                    waiting = run["error_requirements"]
                    extra["error_requirements"] = json.dumps([{**waiting[-1], **answer}])
                else:
                    requirements = self.answered(paused.step_requirements, answer)
                async for event in self.client.continue_workflow_run_stream(
                    workflow_id, run_id, requirements, session_id=session, user_id="ana", headers=self.headers, **extra
                ):
                    streamed.append(event)
            assert streamed[-1].event == "WorkflowCompleted", (workflow_id, [e.event for e in streamed])
            assert not answers, f"{workflow_id} left answers unused: {answers}"
            raw = await self.raw_events(workflow_id, run_id)
            assert [e.event for e in streamed] == [e["event"] for e in raw], (workflow_id, [e.event for e in streamed])
            assert [e.event_index for e in streamed] == [e["event_index"] for e in raw]
            for data, event in zip(raw, streamed):
                assert event.run_id == run_id and event.session_id == session
                self.compare(data, workflow_run_output_event_from_dict(dict(data)))
                self.compare(data, event)
                if data["event"] in AGENT_EVENTS:
                    self.compare(data, run_output_event_from_dict(dict(data)))
                self.events.setdefault(data["event"], set())

        blocking, case = self.params["blocking_pause"], self.params["paused"][self.params["blocking_pause"]]
        run = await self.client.run_workflow(
            blocking, case["message"], session_id="pause-blocking", user_id="ana", headers=self.headers
        )
        assert isinstance(run, WorkflowRunOutput) and run.step_requirements and run.paused_step_name, run
        assert run.is_paused, run.status
        (requirement,) = run.step_requirements
        requirement.confirm()
        done = await self.client.continue_workflow_run(
            blocking, run.run_id, run.step_requirements, session_id="pause-blocking", headers=self.headers
        )
        assert isinstance(done, WorkflowRunOutput) and done.run_id == run.run_id, done
        assert done.status == "COMPLETED" and isinstance(done.content, str) and done.content, done
        try:
            await self.client.continue_workflow_run(blocking, run.run_id, run.step_requirements, headers=self.headers)
        except httpx.HTTPStatusError as exc:  # answered already: 409, the run is not paused
            assert exc.response.status_code == 409 and exc.response.json()["code"] == "run_not_paused", exc.response.text
        else:
            raise AssertionError("a second continue of an answered pause was accepted")

        await self.check_blocking_history()

        waiting = await self.client.run_workflow(
            blocking, case["message"], session_id="pause-cancel", user_id="ana", headers=self.headers
        )
        assert waiting.is_paused, waiting.status
        await self.client.cancel_workflow_run(blocking, waiting.run_id, headers=self.headers)
        for _ in range(400):
            cancelled = await self.client.get_session_run("pause-cancel", waiting.run_id, headers=self.headers)
            if cancelled.status != "PAUSED":
                break
            await asyncio.sleep(0.05)
        assert (cancelled.status, cancelled.cancellation_stage) == ("CANCELLED", "PAUSED"), cancelled

    async def check_blocking_history(self) -> None:
        """A run that pauses twice, continued twice with ``continue_workflow_run`` as an agno user
        does: the run's ``step_requirements`` sent back whole, its last entry answered. The
        second pause's list holds the first, answered, then the active one (AgentOS's history)."""
        workflow_id = self.params["history_pause"]
        case = self.params["paused"][workflow_id]
        first, second = case["answers"]
        run = await self.client.run_workflow(
            workflow_id, case["message"], session_id="pause-history", user_id="ana", headers=self.headers
        )
        assert run.is_paused and len(run.step_requirements) == 1, run
        (review,) = run.step_requirements
        assert review.requires_output_review and review.step_output is not None and review.step_output.content, review
        review.reject(feedback=first["rejection_feedback"])
        again = await self.client.continue_workflow_run(
            workflow_id, run.run_id, run.step_requirements, session_id="pause-history", headers=self.headers
        )
        assert again.is_paused and len(again.step_requirements) == 2, again
        answered, active = again.step_requirements
        assert answered.is_resolved and answered.confirmed is False, answered
        assert answered.rejection_feedback == first["rejection_feedback"], answered
        assert not active.is_resolved and active.retry_count == 1 and active.needs_output_review, active
        active.confirm()
        active.edited_output = second["edited_output"]
        done = await self.client.continue_workflow_run(
            workflow_id, run.run_id, again.step_requirements, session_id="pause-history", headers=self.headers
        )
        assert done.status == "COMPLETED" and second["edited_output"] in str(done.content), done

    async def check_sessions(self) -> None:
        await self.stream(self.params["agents"], "coral reefs", "compat-b")
        page = await self.client.get_sessions(session_type=WORKFLOW, headers=self.headers)
        ids = [s.session_id for s in page.data]
        assert {"compat-a", "compat-b"} <= set(ids) and page.meta.total_count == len(ids) >= 2
        assert ids == sorted(ids, key=lambda i: next(s.created_at for s in page.data if s.session_id == i), reverse=True)
        a = next(s for s in page.data if s.session_id == "compat-a")
        assert (a.session_name, a.session_type, a.workflow_id, a.user_id) == (
            "tide pools at dawn", "workflow", self.params["agents"], "ana")
        mine = await self.client.get_sessions(
            session_type=WORKFLOW, component_id=self.params["agents"], user_id="ana", headers=self.headers
        )
        assert {s.session_id for s in mine.data} == {"compat-a", "compat-b"}
        assert (await self.client.get_sessions(user_id="nobody", headers=self.headers)).data == []
        assert (await self.client.get_sessions(session_type=SessionType.AGENT, headers=self.headers)).data == []
        first = await self.client.get_sessions(limit=1, page=1, sort_by="created_at", sort_order="asc", headers=self.headers)
        second = await self.client.get_sessions(limit=1, page=2, sort_by="created_at", sort_order="asc", headers=self.headers)
        assert len(first.data) == len(second.data) == 1 and first.data[0].session_id != second.data[0].session_id
        assert first.meta.total_pages == page.meta.total_count and first.meta.page == 1 and second.meta.page == 2
        named = await self.client.get_sessions(session_name="AT DAWN", headers=self.headers)
        assert [s.session_id for s in named.data] == ["compat-a"]

        detail = await self.client.get_session("compat-a", session_type=WORKFLOW, headers=self.headers)
        assert isinstance(detail, WorkflowSessionDetailSchema) and detail.session_name == "tide pools at dawn"
        detected = await self.client.get_session("compat-a", headers=self.headers)  # type picked from workflow_id
        assert isinstance(detected, WorkflowSessionDetailSchema) and detected.workflow_id == self.params["agents"]

        runs = await self.client.get_session_runs("compat-a", session_type=WORKFLOW, headers=self.headers)
        assert [r.run_id for r in runs] == [self.runs["blocking"].run_id]
        run = runs[0]
        assert isinstance(run, WorkflowRunSchema) and run.status == "COMPLETED" and run.run_input == "tide pools at dawn"
        assert run.content == self.runs["blocking"].content and run.metrics is not None
        assert set(run.metrics["steps"]) == set(self.params["agent_steps"])
        assert await self.client.get_session_runs("compat-a", status=["error"], headers=self.headers) == []
        one = await self.client.get_session_run("compat-a", run.run_id, headers=self.headers)
        assert one.model_dump() == run.model_dump()

        renamed = await self.client.rename_session("compat-a", "Tide pools, renamed", headers=self.headers)
        assert isinstance(renamed, WorkflowSessionDetailSchema) and renamed.session_name == "Tide pools, renamed"
        assert (await self.client.get_session("compat-a", headers=self.headers)).session_name == "Tide pools, renamed"

        await self.client.delete_session("compat-a", headers=self.headers)
        await self.expect_404(self.client.get_session("compat-a", headers=self.headers))
        await self.client.delete_sessions(["compat-b", "compat-c"], [WORKFLOW, WORKFLOW], headers=self.headers)
        await self.expect_404(self.client.get_session_runs("compat-b", headers=self.headers))
        left = await self.client.get_sessions(headers=self.headers)
        assert not {"compat-a", "compat-b", "compat-c"} & {s.session_id for s in left.data}

    async def check_logged_runs(self) -> None:
        """Runs made before the checks (``logged_runs``: one that was resumed after a crash, one that
        was queued): each event of their logs parses with agno's parser and carries its values, but
        runstream's own events, which agno's parser refuses; and the client's own SSE reader, given
        the whole log, skips just those and yields the others in order."""
        for logged in self.params.get("logged_runs", []):
            response = await self.http.get(f"/workflows/{logged['workflow_id']}/runs/{logged['run_id']}/events")
            response.raise_for_status()
            raw = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
            names = [e["event"] for e in raw]
            assert set(logged["expect"]) <= set(names), (logged, names)
            known = []
            for data in raw:
                self.events.setdefault(data["event"], set())
                if data["event"] in self.params["extensions"]:
                    self.assert_unknown_to_agno(data)
                    continue
                self.compare(data, workflow_run_output_event_from_dict(dict(data)))
                if data["event"] in AGENT_EVENTS:
                    self.compare(data, run_output_event_from_dict(dict(data)))
                known.append(data)

            async def lines() -> Any:
                for line in response.text.splitlines():
                    yield line

            # run_workflow_stream's reader (agno/client/os.py), over the same bytes
            read = [e async for e in self.client._parse_sse_events(lines(), workflow_run_output_event_from_dict)]
            assert [(e.event, e.event_index) for e in read] == [(e["event"], e["event_index"]) for e in known]

    async def check_auth(self) -> None:
        """With a security key, a call without it is refused (the others above sent it)."""
        if self.key is None:
            return
        for call in (self.client.aget_config(), self.client.get_sessions(), self.client.list_workflows()):
            try:
                await call
            except httpx.HTTPStatusError as exc:
                assert exc.response.status_code == 401
            else:
                raise AssertionError("a call without the key was served")

    async def expect_404(self, call: Awaitable[Any]) -> None:
        try:
            await call
        except httpx.HTTPStatusError as exc:
            assert exc.response.status_code == 404, exc.response.status_code
        else:
            raise AssertionError("expected 404")


async def main(params: dict[str, Any]) -> dict[str, Any]:
    checks = Checks(params)
    order: list[Callable[[], Awaitable[None]]] = [
        checks.check_config, checks.check_workflows, checks.check_run_workflow, checks.check_every_event_parses,
        checks.check_cancel, checks.check_sessions, checks.check_continue, checks.check_auth, checks.check_logged_runs,
    ]
    passed, failed, seconds = [], {}, {}
    for check in order:
        name = check.__name__
        if name == "check_every_event_parses" and not params.get("walk", True):
            continue
        if "only" in params and name not in params["only"]:
            continue
        started = time.perf_counter()
        try:
            await check()
            passed.append(name)
        except Exception:  # report every check, not only the first that fails
            failed[name] = traceback.format_exc()
        seconds[name] = round(time.perf_counter() - started, 3)
    await checks.http.aclose()
    return {"passed": passed, "failed": failed, "seconds": seconds, "events": {k: sorted(v) for k, v in checks.events.items()}}


if __name__ == "__main__":
    async def every_server(servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # one event loop: agno's client keeps one shared HTTP client, bound to its first loop
        return [await main(params) for params in servers]

    results = asyncio.run(every_server(json.loads(sys.argv[1])))
    print(json.dumps(results))
    sys.exit(1 if any(r["failed"] for r in results) else 0)
