"""Crash recovery (docs/protocol.md, "What runstream promises beyond AgentOS", 1 and 3): SIGKILL a real server at chosen points, restart it
on the same SQLite file, and follow each run to its end with a reconnecting WebSocket client."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apps.scenario import Crossing, check_crossing, crash_inside_steps, cross_crashes

pytestmark = pytest.mark.anyio


def essay(topic: str) -> str:
    """The essay workflow's output: it needs every earlier output, so a wrong resume shows."""
    return f"essay on facts about {topic} with left(facts about {topic}) and right(facts about {topic})"


def interrupted(c: Crossing) -> set[str]:
    log = c.crashes[0].log
    return {e["step_name"] for e in log if e["event"] == "StepStarted"} - {
        e["step_name"] for e in log if e["event"] == "StepCompleted"
    }


def assert_resumed(c: Crossing, topic: str, resumed_from: str | None) -> None:
    check_crossing(c)
    assert c.record.status == "completed" and c.record.output == essay(topic)
    assert c.log[-1]["event"] == "WorkflowCompleted" and c.log[-1]["content"] == essay(topic)
    (resumed,) = c.resumed()
    assert resumed["event_index"] == len(c.crashes[0].log)
    assert resumed["resumed_from_step"] == resumed_from
    for step in interrupted(c):  # run again from its start, once
        assert c.ran[step] == c.crashes[0].ran[step] + 1


async def test_runs_killed_inside_a_step_resume_there_unless_it_cannot_rerun(tmp_path: Path) -> None:
    first, in_group, last, payment = await crash_inside_steps(
        tmp_path,
        [("essay", "tides@research"), ("essay", "tides@left"), ("essay", "tides@write"), ("payment", "tides@charge")],
    )
    assert_resumed(first, "tides@research", "research")  # before the first step completes
    assert_resumed(in_group, "tides@left", "sides")  # inside a parallel group
    assert_resumed(last, "tides@write", "write")
    assert interrupted(last) == {"write"} and last.ran == {"research": 1, "left": 1, "right": 1, "write": 2}

    check_crossing(payment)
    assert payment.ran["charge"] == 1 and payment.record.status == "error"
    assert "interrupted in a step that cannot be re-run" in payment.log[-1]["error"]
    assert not payment.resumed() and payment.log[-1]["event_index"] == len(payment.crashes[0].log)


@pytest.mark.parametrize(
    ("crash_at", "resumed_from"),
    [
        ("after-commit:StepCompleted:0", "sides"),  # between steps: written, never published
        ("before-commit:WorkflowCompleted", None),  # during the terminal write
    ],
)
async def test_a_run_killed_between_steps_resumes_from_the_next(
    tmp_path: Path, crash_at: str, resumed_from: str | None
) -> None:
    c = await cross_crashes(tmp_path, "essay", crash_at)
    assert_resumed(c, "tides", resumed_from)
    assert c.ran["research"] == 1


async def test_a_run_killed_before_its_first_event_starts_afresh(tmp_path: Path) -> None:
    c = await cross_crashes(tmp_path, "essay", "before-commit:WorkflowStarted")
    check_crossing(c)
    assert c.crashes[0].log == []
    assert c.log[0]["event"] == "WorkflowStarted" and not c.resumed()
    assert c.log[-1]["content"] == essay("tides")


async def test_a_run_killed_after_its_terminal_write_replays(tmp_path: Path) -> None:
    c = await cross_crashes(tmp_path, "essay", "after-commit:WorkflowCompleted")
    check_crossing(c)
    assert c.follower.notices[-1]["event"] == "replay" and not c.resumed()
    assert c.crashes[0].log == c.log  # it had ended: the restart wrote nothing


async def test_a_step_that_cannot_rerun_starts_only_once_its_start_is_logged(tmp_path: Path) -> None:
    c = await cross_crashes(tmp_path, "payment", "before-commit:StepStarted:1")
    check_crossing(c)
    assert c.crashes[0].ran["charge"] == 0  # it waited for its StepStarted to be written
    assert c.ran["charge"] == 1 and c.record.status == "completed"
