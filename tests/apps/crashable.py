"""A server whose run can be stopped at a chosen point, for crash-recovery tests.

Run ``python -m tests.apps.crashable`` with:

- ``CRASH_DB``: the SQLite file; ``CRASH_PORT``: the port; ``CRASH_DIR``: a
  folder where each step execution is recorded (``executions``: the run's
  input and the step's name, a line each) and where ``reached`` (or
  ``reached.NAME``) appears once the server stops at ``CRASH_AT``;
- ``CRASH_AT`` (optional), where to stop for good (the test then kills it):
  ``step:NAME`` inside step NAME, after its ``StepStarted`` is logged;
  ``before-commit:EVENT[:PATH]`` in the log append of the batch that holds
  EVENT (of step path PATH), before it is written; ``after-commit:...`` once
  it is written, before anyone is told of it; ``step:@input``: a run whose
  input ends with ``@NAME`` stops inside step NAME (so one process can hold
  several runs, each stopped in another step);
- ``CRASH_PACE`` (optional): seconds between the chunks the first step streams.

The log is the real ``SQLiteLog``; ``PausingLog`` only stops in ``append``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import orjson

from runstream import HumanReview, Parallel, Server, SQLiteLog, Step, StepInput, StepOutput, Workflow
from runstream.log.base import AppendBatch

__all__ = ["PausingLog", "server", "workflows"]

CONTROL = Path(os.environ.get("CRASH_DIR", "."))
CRASH_AT = os.environ.get("CRASH_AT", "")
PACE = float(os.environ.get("CRASH_PACE", "0"))


def _stop_here(marker: str = "reached") -> None:
    (CONTROL / marker).write_text(CRASH_AT)


def record(name: str, step_input: StepInput) -> None:
    """Note one execution of step ``name``; stop for good if the test asked to stop in it."""
    with open(CONTROL / "executions", "a") as executions:
        executions.write(f"{step_input.input}\t{name}\n")
    by_input = CRASH_AT == "step:@input" and str(step_input.input).endswith(f"@{name}")
    if CRASH_AT == f"step:{name}" or by_input:
        _stop_here(f"reached.{name}")
        threading.Event().wait()


async def research(step_input: StepInput) -> AsyncIterator[str]:
    await asyncio.to_thread(record, "research", step_input)
    for word in ["facts ", "about ", str(step_input.input)]:
        await asyncio.sleep(PACE)
        yield word


def left(step_input: StepInput) -> str:
    record("left", step_input)
    return f"left({step_input.previous_step_content})"


def right(step_input: StepInput) -> str:
    record("right", step_input)
    return f"right({step_input.previous_step_content})"


def write(step_input: StepInput) -> StepOutput:
    record("write", step_input)
    sides = step_input.previous_step_content
    research_text = step_input.get_step_content("research")
    return StepOutput(content=f"essay on {research_text} with {sides['left']} and {sides['right']}")


def charge(step_input: StepInput) -> str:
    record("charge", step_input)
    return "charged once"


def ship(step_input: StepInput) -> str:
    record("ship", step_input)
    return f"shipped {step_input.previous_step_content}"


def workflows() -> list[Workflow]:
    essay = Workflow(
        name="Essay",
        id="essay",
        steps=[
            Step(name="research", executor=research),
            Parallel(Step(name="left", executor=left), Step(name="right", executor=right), name="sides"),
            Step(name="write", executor=write),
        ],
    )
    payment = Workflow(
        name="Payment",
        id="payment",
        steps=[Step(name="research", executor=research), Step(name="charge", executor=charge, rerunnable=False)],
    )
    review = Workflow(
        name="Review",
        id="review",
        steps=[
            Step(name="research", executor=research),
            Step(name="ship", executor=ship, human_review=HumanReview(requires_confirmation=True)),
        ],
    )
    return [essay, payment, review]


class PausingLog(SQLiteLog):
    """The real SQLite log, which stops for good at ``CRASH_AT``'s commit point."""

    def __init__(self, path: str, point: str) -> None:
        super().__init__(path)
        when, _, target = point.partition(":")
        self.when = when if when in ("before-commit", "after-commit") else ""
        self.event, _, self.path_filter = target.partition(":")

    def _matches(self, batch: AppendBatch) -> bool:
        for events, _ in batch.values():
            for event in events:
                if event.name == self.event and (
                    not self.path_filter or orjson.loads(event.data).get("step_path") == self.path_filter
                ):
                    return True
        return False

    async def append(self, batch: AppendBatch) -> None:
        hit = bool(self.when) and self._matches(batch)
        if hit and self.when == "before-commit":
            await self._stop()
        await super().append(batch)
        if hit:
            await self._stop()

    async def _stop(self) -> None:
        _stop_here()
        await asyncio.Event().wait()


def server() -> Server:
    log = PausingLog(os.environ["CRASH_DB"], CRASH_AT)
    return Server(workflows=workflows(), log=log, lease_ttl=float(os.environ.get("CRASH_LEASE_TTL", "15")))


if __name__ == "__main__":
    server().serve(host="127.0.0.1", port=int(os.environ["CRASH_PORT"]), log_level="warning")
