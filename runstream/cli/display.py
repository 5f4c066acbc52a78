"""The view of a run in a terminal: steps, tool calls, the text streaming now, times from the events.

``RunView`` folds events into what to show (pure, testable); every time comes
from the events (``created_at_ms``, else ``created_at``), so attaching to a run
long after it ended shows how long it took, not how long ago it started.
``render`` draws it with rich for a terminal; ``progress_line`` is the plain
line an event is worth off a terminal (pipes, CI).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from runstream import events as ev
from runstream.client import Event, Transcript
from runstream.client.transcript import step_key as transcript_key

__all__ = ["END_STATUS", "RunView", "StepView", "ToolView", "event_time", "format_arguments", "format_output", "progress_line", "render"]

_TEXT_LINES = 12
_MARKS = {"running": "[yellow]…[/]", "completed": "[green]✓[/]", "error": "[red]✗[/]", "cancelled": "[dim]-[/]",
          "skipped": "[dim]↷[/]"}
_PLAIN_MARKS = {"running": "…", "completed": "✓", "error": "✗", "cancelled": "-", "skipped": "↷"}
END_STATUS = {ev.WORKFLOW_COMPLETED: "completed", ev.WORKFLOW_ERROR: "error", ev.WORKFLOW_CANCELLED: "cancelled"}


def event_time(data: dict[str, Any]) -> float | None:
    """When the event was logged, in seconds: ``created_at_ms`` when present, else ``created_at``."""
    if isinstance(data.get("created_at_ms"), int):
        return float(data["created_at_ms"]) / 1000
    created = data.get("created_at")
    return float(created) if isinstance(created, (int, float)) else None


def format_output(value: Any) -> str:
    """A run's output as text: strings as they are, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def format_arguments(args: Any) -> str:
    """A tool call's arguments as ``name=json, ...``."""
    if isinstance(args, dict):
        return ", ".join(f"{k}={orjson.dumps(v, default=str).decode()}" for k, v in args.items())
    return orjson.dumps(args, default=str).decode()


@dataclass
class ToolView:
    name: str
    args: Any
    status: str = "running"
    duration: float | None = None
    result: Any = None

    def describe(self) -> str:
        took = f" {self.duration:.2f}s" if self.duration is not None else ""
        return f"{self.name}({format_arguments(self.args)}){took}"


@dataclass
class StepView:
    name: str
    status: str = "running"
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    tools: list[ToolView] = field(default_factory=list)
    skip_reason: str | None = None
    """Why a skipped step did not run (``rejected``, ``error``): a person's answer, not a success."""

    def took(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return max(0.0, (self.ended if self.ended is not None else now) - self.started)


@dataclass
class RunView:
    """What the terminal shows of one run, folded from its events."""

    run_id: str
    workflow: str = ""
    status: str = "connecting"
    started: float | None = None
    ended: float | None = None
    last_index: int = -1
    latest: float | None = None
    steps: dict[str, StepView] = field(default_factory=dict)
    tools: dict[str, ToolView] = field(default_factory=dict)
    transcript: Transcript = field(default_factory=Transcript)
    """The text each step streamed, once: a step a resumed run ran again from its start
    streams anew, and its ``WorkflowResumed`` drops the earlier text (``Transcript``)."""
    streaming: str | None = None
    """The ``Transcript`` key of the step whose text is shown: the last to start or stream."""
    output: Any = None
    error: str | None = None
    note: str = ""
    closed_by_end: list[StepView] = field(default_factory=list)
    """Steps still running when the run ended (a step that raised has no ``StepCompleted``)."""

    def add(self, event: Event) -> None:
        data = event.data
        at = event_time(data)
        self.last_index, self.note = event.index, ""
        self.latest = at if at is not None else self.latest
        self.workflow = str(data.get("workflow_name") or data.get("workflow_id") or self.workflow)
        if event.name == ev.WORKFLOW_QUEUED:
            self.status = "queued"  # waiting for a slot: its time runs from its WorkflowStarted
        elif self.status in ("connecting", "queued"):
            self.status = "running"
        if self.started is None and at is not None and self.status != "queued":
            self.started = at
        key = f"{data.get('step_index')}:{data.get('step_name')}"
        self.transcript.add(event)
        if event.name == ev.STEP_STARTED:
            self.steps[key] = StepView(str(data.get("step_name")), started=at)
            self.streaming = transcript_key(data)
        elif event.name == ev.STEP_COMPLETED and data.get("skipped"):  # a rejected step never started
            step = self.steps.setdefault(key, StepView(str(data.get("step_name")), started=at))
            step.status, step.ended, step.skip_reason = "skipped", at, str(data.get("skip_reason") or "skipped")
        elif event.name == ev.STEP_COMPLETED and key in self.steps:
            step = self.steps[key]
            step.status = "completed" if data.get("success", True) else "error"
            step.ended, step.error = at, data.get("error") or step.error
        elif event.name == ev.RUN_CONTENT and isinstance(data.get("content"), str):
            self.streaming = transcript_key(data)
        elif event.name in (ev.TOOL_CALL_STARTED, ev.TOOL_CALL_COMPLETED):
            self._tool(event.name, data, key)
        elif event.name == ev.WORKFLOW_PAUSED:
            self.status = "paused"
        elif event.name in (ev.STEP_CONTINUED, ev.STEP_EXECUTOR_CONTINUED):
            self.status = "running"
        elif event.terminal:
            self.status, self.ended = END_STATUS[event.name], at
            self.output, self.error = data.get("content"), data.get("error") or data.get("reason")
            self.closed_by_end = [step for step in self.steps.values() if step.status == "running"]
            for step in self.closed_by_end:
                step.status = "error" if self.status == "error" else "cancelled"
                step.ended, step.error = at, self.error if self.status == "error" else None

    def _tool(self, name: str, data: dict[str, Any], step_key: str) -> None:
        tool = data.get("tool") or {}
        call_id = str(tool.get("tool_call_id") or len(self.tools))
        if name == ev.TOOL_CALL_STARTED:
            view = ToolView(str(tool.get("tool_name")), tool.get("tool_args"))
            self.tools[call_id] = view
            if step_key in self.steps:
                self.steps[step_key].tools.append(view)
            return
        view = self.tools.get(call_id) or ToolView(str(tool.get("tool_name")), tool.get("tool_args"))
        view.status = "error" if tool.get("tool_call_error") else "completed"
        view.duration = (tool.get("metrics") or {}).get("duration")
        view.result = tool.get("result")

    @property
    def text(self) -> str:
        """The text of the step streaming now (each step's own, even when steps run side by side)."""
        return self.transcript.of(self.streaming) if self.streaming is not None else ""

    def now(self) -> float:
        """The time a running run is shown at: the clock (it is still going)."""
        return time.time()

    def elapsed(self) -> float:
        """Seconds from the first event to the last (a run that has ended) or to now."""
        if self.started is None:
            return 0.0
        end = self.ended if self.ended is not None else self.now()
        return max(0.0, end - self.started)


def render(view: RunView) -> RenderableType:
    now = view.now()
    steps = Table.grid(padding=(0, 1))
    for step in view.steps.values():
        took = f"skipped ({step.skip_reason})" if step.skip_reason else f"{step.took(now):.1f}s"
        steps.add_row(_MARKS.get(step.status, "·"), escape(step.name), f"[dim]{escape(took)}[/]")
        for tool in step.tools:
            steps.add_row("", f"[dim]{_MARKS.get(tool.status, '·')} tool {escape(tool.describe())}[/]", "")
        if step.error:
            steps.add_row("", f"[red]{escape(step.error)}[/]", "")
    tail = "\n".join(view.text.splitlines()[-_TEXT_LINES:])
    status = f"[bold]{escape(view.workflow or 'run')}[/] {view.run_id}  {view.status}  " \
             f"{view.elapsed():.1f}s  event {view.last_index}"
    parts: list[RenderableType] = [Text.from_markup(status), steps]
    if tail and view.ended is None:
        parts.append(Panel(tail, title="streaming", border_style="dim"))
    if view.note:
        parts.append(Text(view.note, style="yellow"))
    return Group(*parts)


def progress_line(view: RunView, event: Event) -> str | None:
    """The line ``event`` is worth in plain output (after ``view.add(event)``), or None."""
    data = event.data
    key = f"{data.get('step_index')}:{data.get('step_name')}"
    step = view.steps.get(key)
    if event.name == ev.WORKFLOW_QUEUED:
        return f"run {view.run_id} of {view.workflow} queued: every run slot of the server is taken"
    if event.name == ev.WORKFLOW_STARTED:
        return f"run {view.run_id} of {view.workflow} started"
    if event.name == ev.WORKFLOW_RESUMED:
        return f"run {view.run_id} resumed after a restart"
    if event.name == ev.STEP_STARTED and step is not None:
        return f"  … {step.name}"
    if event.name == ev.STEP_COMPLETED and step is not None and step.skip_reason:
        return f"  ↷ {step.name} skipped ({step.skip_reason})"
    if event.name == ev.STEP_COMPLETED and step is not None:
        line = f"  {_PLAIN_MARKS.get(step.status, '·')} {step.name} {step.took(view.now()):.1f}s"
        return line + (f": {step.error}" if step.error else "")
    if event.name == ev.TOOL_CALL_COMPLETED:
        tool = view.tools.get(str((data.get("tool") or {}).get("tool_call_id")))
        if tool is not None:
            return f"    {_PLAIN_MARKS.get(tool.status, '·')} tool {tool.describe()}"
    if event.name == ev.WORKFLOW_PAUSED:
        return f"  ‖ paused at {data.get('paused_step_name') or data.get('step_name')}"
    if event.name in (ev.STEP_CONTINUED, ev.STEP_EXECUTOR_CONTINUED):
        return f"  ▶ {data.get('step_name')} continued"
    if event.name == ev.STEP_RETRY:
        return f"  ↻ {data.get('step_name')} retry {data.get('attempt')}: {data.get('error')}"
    if event.terminal:
        closed = [f"  {_PLAIN_MARKS.get(s.status, '·')} {s.name} {s.took(view.now()):.1f}s"
                  + (f": {s.error}" if s.error else "") for s in view.closed_by_end]
        return "\n".join(closed) or None
    return None
