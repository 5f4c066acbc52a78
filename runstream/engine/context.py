"""The run a step executes in: where its events go and where it sits in the tree.

The engine never touches storage or sockets: it hands each event (a name and a
dict of fields) to the run's ``EventSink`` (``RunContext.emit``), which the run
manager provides.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from dataclasses import dataclass, field
from typing import Any

from runstream.engine.hitl import Resolution
from runstream.engine.io import StepOutput
from runstream.engine.sink import CallbackSink, Emit, EmitContent, EventSink

__all__ = ["Emit", "EmitContent", "RunContext", "StepScope"]


@dataclass(frozen=True)
class StepScope:
    """Where a step sits: its name, index among siblings, id, parent and depth.

    ``path`` (``"1"``, ``"2.0"``, ``"2.i3.0"``) names the step's place in the
    definition and is stable across a restart, so a resumed run can find the
    outputs its completed steps already logged.
    """

    step_name: str
    step_index: int
    path: str
    run_id: str
    parent_step_id: str | None = None
    depth: int = 0

    @cached_property
    def step_id(self) -> str:
        return hashlib.blake2s(f"{self.run_id}/{self.path}".encode(), digest_size=8).hexdigest()

    def child(self, name: str, index: int, segment: str | None = None) -> "StepScope":
        return StepScope(
            step_name=name,
            step_index=index,
            path=f"{self.path}.{segment if segment is not None else index}",
            run_id=self.run_id,
            parent_step_id=self.step_id,
            depth=self.depth + 1,
        )

    def fields(self) -> dict[str, Any]:
        """The attribution every event of this step carries."""
        return {
            "step_name": self.step_name,
            "step_index": self.step_index,
            "step_id": self.step_id,
            "parent_step_id": self.parent_step_id,
            "depth": self.depth,
        }


@dataclass
class RunContext:
    """One run's identity, its event sink and what a resumed run already did.

    ``sink`` is the run's ``EventSink``, or a plain ``emit`` function (running the engine
    alone); ``emit`` is the sink's."""

    run_id: str
    workflow_id: str
    workflow_name: str
    sink: EventSink | Emit
    session_id: str | None = None
    user_id: str | None = None
    session_state: dict[str, Any] = field(default_factory=dict)
    completed_steps: dict[str, StepOutput] = field(default_factory=dict)
    """Outputs of steps finished before a restart, by ``StepScope.path``."""
    started_steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Parts that had announced themselves (their ``*Started`` event is logged), by path, with
    the decisions those events carry (``condition_result``, ``selected_steps``): a resumed or
    continued run neither announces them twice nor decides them again."""
    resolutions: dict[str, Resolution] = field(default_factory=dict)
    """The answers to the run's pauses so far, by requirement id, in the order they came."""
    answered: list[dict[str, Any]] = field(default_factory=list)
    """The run's answered pauses, oldest first, as resolved ``StepRequirement`` dicts: the
    history a ``WorkflowPaused`` lists before its active requirement."""
    history: list[dict[str, Any]] | None = None
    """The session's earlier runs, oldest first, as ``{"input", "output"}``; agents with
    ``add_history`` show them to their model. None until ``session_history`` loads them
    from the sink: only when an agent asks, since each earlier run's output may be long
    and most runs have no agent with ``add_history``."""
    metrics: dict[str, int] = field(default_factory=dict)
    """Token counts summed over the run's model calls; ``WorkflowCompleted`` carries them."""
    step_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per step name, AgentOS's ``StepMetrics``: ``step_name``, ``executor_type``,
    ``executor_name`` and ``metrics``; ``WorkflowCompleted.metrics.steps`` carries them."""
    models: dict[int, object] = field(default_factory=dict)
    """The models the run's agents used, by ``id()`` (a model need not be hashable); the
    run manager shares one dict between its runs and closes them at shutdown."""
    emit: Emit = field(init=False, repr=False)
    """``await ctx.emit(name, fields)``: the sink's ``emit``."""
    _sink: EventSink = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._sink = self.sink if isinstance(self.sink, EventSink) else CallbackSink(self.sink)
        self.emit = self._sink.emit

    def content_emitter(self, name: str, fields: dict[str, Any]) -> EmitContent:
        """The sink's emitter of ``name`` events that differ only in ``content`` (tokens, chunks)."""
        return self._sink.content_emitter(name, fields)

    async def session_history(self) -> list[dict[str, Any]]:
        """``history``, loaded on first use: the session's runs completed by then."""
        if self.history is None:
            self.history = await self._sink.history()
        return self.history

    def add_metrics(self, values: dict[str, int]) -> None:
        for name, value in values.items():
            self.metrics[name] = self.metrics.get(name, 0) + value

    def add_step_metrics(self, step_name: str, executor_type: str, executor_name: str, metrics: dict[str, Any]) -> None:
        """Record what an executor of step ``step_name`` used; a step that runs again (in a
        loop, on a retry) adds to its numbers."""
        entry = self.step_metrics.setdefault(
            step_name,
            {"step_name": step_name, "executor_type": executor_type, "executor_name": executor_name, "metrics": {}},
        )
        totals = entry["metrics"]
        for name, value in metrics.items():
            totals[name] = totals.get(name, 0) + value

    def use_model(self, model: object) -> None:
        """Note a model an agent of this run streams from (agents call it)."""
        self.models[id(model)] = model

    def answers(self, path: str, kinds: frozenset[str]) -> list[Resolution]:
        """The answers to the pauses of the part at ``path`` of these kinds, oldest first."""
        return [r for r in self.resolutions.values() if r.step_path == path and r.kind in kinds]

    def top_scope(self, name: str, index: int) -> StepScope:
        return StepScope(step_name=name, step_index=index, path=str(index), run_id=self.run_id)
