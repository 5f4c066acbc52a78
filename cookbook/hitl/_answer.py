"""Run a cookbook pause example in this process: start it, show the pause, answer it, show the rest.

A real run manager over a throwaway SQLite log, as a server runs it: the answer goes
through ``RunManager.continue_run``, checked against the requirement the log stored.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import orjson

from runstream import LocalHub, RunManager, SQLiteLog, Workflow


async def answer_run(workflow: Workflow, message: Any, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run ``workflow``, answering each pause with the next of ``answers`` (as a client's
    ``step_requirements`` entry); returns every event, printed as it goes."""
    with tempfile.TemporaryDirectory() as tmp:
        manager = RunManager(SQLiteLog(Path(tmp) / "log.db"), LocalHub(), [workflow])
        await manager.start()
        try:
            run = await manager.start_run(workflow.id, message)
            pending = list(answers)
            while True:
                await manager.wait(run.run_id)
                record = await manager.get_run(run.run_id)
                if record.status != "paused" or not pending:
                    break
                answer = pending.pop(0)
                print(f"  -> answering: {answer}")
                await manager.continue_run(run.run_id, [answer])
            events = [orjson.loads(e.data) for e in await manager.log.read(run.run_id, 0, 10_000)]
        finally:
            await manager.close()
    for event in events:
        if event["event"] != "RunContent":
            detail = event.get("content") or event.get("confirmation_message") or event.get("available_choices") or ""
            print(f"{event['event_index']:>3} {event['event']:<22} {event.get('step_name') or ''} {detail}"[:120])
    return events


def show(workflow: Workflow, message: Any, answers: list[dict[str, Any]]) -> None:
    asyncio.run(answer_run(workflow, message, answers))
