"""``Transcript``: the text a run streamed, per step, shown once even across a resume.

After a crash, a resumed run runs its interrupted steps again from their start,
and they stream their text anew. ``WorkflowResumed`` says which earlier events
that supersedes (``superseded_step_ids``, from ``supersedes_from_index``), so a
client that appends content drops those steps' earlier text instead of showing
it twice. The CLI (and any display) folds events through this.
"""

from __future__ import annotations

from typing import Any

from runstream import events as ev
from runstream.client.event import Event

__all__ = ["Transcript", "step_key"]


def step_key(data: dict[str, Any]) -> str:
    """Which step an event belongs to: its ``step_id`` (else its index and name)."""
    return str(data.get("step_id") or f"{data.get('step_index')}:{data.get('step_name')}")


class Transcript:
    """Folds a run's events, in order, into the text each step streamed (``RunContent``)."""

    def __init__(self) -> None:
        self.steps: dict[str, str] = {}
        """Text by ``step_key``, in the order the steps first streamed."""

    def add(self, event: Event) -> None:
        data = event.data
        if event.name == ev.RUN_CONTENT and isinstance(data.get("content"), str):
            step = step_key(data)
            self.steps[step] = self.steps.get(step, "") + data["content"]
        elif event.name == ev.WORKFLOW_RESUMED:
            for step in data.get("superseded_step_ids") or ():
                self.steps.pop(str(step), None)

    def of(self, step: str) -> str:
        """The text of one step (by ``step_key``)."""
        return self.steps.get(step, "")

    @property
    def text(self) -> str:
        """Everything streamed, step after step."""
        return "".join(self.steps.values())
