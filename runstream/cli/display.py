"""The live view of a run in a terminal: steps, the text streaming now, elapsed time.

``RunView`` folds events into what to show (pure, testable); ``render`` draws
it with rich. The CLI feeds it events and lets ``rich.live.Live`` redraw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from runstream import events as ev
from runstream.client import Event

__all__ = ["END_STATUS", "RunView", "StepView", "render"]

_TEXT_LINES = 12
_MARKS = {"running": "[yellow]…[/]", "completed": "[green]✓[/]", "error": "[red]✗[/]"}
END_STATUS = {ev.WORKFLOW_COMPLETED: "completed", ev.WORKFLOW_ERROR: "error", ev.WORKFLOW_CANCELLED: "cancelled"}


@dataclass
class StepView:
    name: str
    status: str = "running"
    started: float = 0.0
    ended: float | None = None


@dataclass
class RunView:
    """What the terminal shows of one run, folded from its events."""

    run_id: str
    workflow: str = ""
    status: str = "connecting"
    started: float = field(default_factory=time.time)
    ended: float | None = None
    last_index: int = -1
    steps: dict[str, StepView] = field(default_factory=dict)
    text: str = ""
    output: Any = None
    error: str | None = None
    note: str = ""

    def add(self, event: Event) -> None:
        data, now = event.data, time.time()
        self.last_index, self.note = event.index, ""
        self.workflow = str(data.get("workflow_name") or data.get("workflow_id") or self.workflow)
        if event.index == 0:
            self.started = float(data.get("created_at") or now)
        if self.status == "connecting":
            self.status = "running"
        key = f"{data.get('step_index')}:{data.get('step_name')}"
        if event.name == ev.STEP_STARTED:
            self.steps[key] = StepView(str(data.get("step_name")), started=now)
            self.text = ""
        elif event.name == ev.STEP_COMPLETED and key in self.steps:
            step = self.steps[key]
            step.status = "completed" if data.get("success", True) else "error"
            step.ended = now
        elif event.name == ev.RUN_CONTENT and isinstance(data.get("content"), str):
            self.text += data["content"]
        elif event.terminal:
            self.status, self.ended = END_STATUS[event.name], now
            self.output, self.error = data.get("content"), data.get("error") or data.get("reason")

    def elapsed(self) -> float:
        return max(0.0, (self.ended or time.time()) - self.started)


def render(view: RunView) -> RenderableType:
    steps = Table.grid(padding=(0, 1))
    for step in view.steps.values():
        took = f"{(step.ended or time.time()) - step.started:.1f}s"
        steps.add_row(_MARKS.get(step.status, "?"), step.name, f"[dim]{took}[/]")
    tail = "\n".join(view.text.splitlines()[-_TEXT_LINES:])
    status = f"[bold]{view.workflow or 'run'}[/] {view.run_id}  {view.status}  " \
             f"{view.elapsed():.1f}s  event {view.last_index}"
    parts: list[RenderableType] = [Text.from_markup(status), steps]
    if tail and view.ended is None:
        parts.append(Panel(tail, title="streaming", border_style="dim"))
    if view.note:
        parts.append(Text(view.note, style="yellow"))
    return Group(*parts)
