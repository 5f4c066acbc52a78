"""Paused runs in the run manager, without a server: they hold no task, and continue from the log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runstream import HumanReview, LocalHub, RunManager, RunStatus, SQLiteLog, Step, Workflow
from runstream.errors import InvalidContinue, RunNotPaused
from tests.waiting import until

pytestmark = pytest.mark.anyio

WORKFLOW = Workflow(id="approve", name="Approve", steps=[
    Step(name="Approve", executor=lambda si: f"approved {si.input}", human_review=HumanReview(requires_confirmation=True)),
])


async def test_paused_runs_hold_no_task_and_each_continues_once(tmp_path: Path) -> None:
    manager = RunManager(SQLiteLog(tmp_path / "log.db"), LocalHub(), [WORKFLOW])
    await manager.start()
    try:
        baseline = len(asyncio.all_tasks())
        runs = [await manager.start_run("approve", f"r{i}") for i in range(50)]
        for run in runs:
            await manager.wait(run.run_id)
        statuses = [(await manager.get_run(r.run_id)).status for r in runs]
        assert statuses == [RunStatus.PAUSED] * 50
        assert not manager._active and len(asyncio.all_tasks()) == baseline  # nothing held while paused

        run_id = runs[0].run_id
        with pytest.raises(InvalidContinue):
            await manager.continue_run(run_id, [{"confirmed": "maybe"}])
        assert (await manager.get_run(run_id)).status == RunStatus.PAUSED
        results = await asyncio.gather(
            *(manager.continue_run(run_id, [{"confirmed": True}]) for _ in range(5)), return_exceptions=True
        )
        assert sum(isinstance(r, int) for r in results) == 1
        assert sum(isinstance(r, RunNotPaused) for r in results) == 4
        await until(lambda: not manager._active, what="the continued run to end")
        done = await manager.get_run(run_id)
        assert done.status == RunStatus.COMPLETED and done.output == "approved r0"
    finally:
        await manager.close()
