"""The run a step executes in: where its events go and where it sits in the tree.

The engine never touches storage or sockets: it hands each event (a name and a
dict of fields) to ``RunContext.emit``, which the run manager provides.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runstream.engine.io import StepOutput

__all__ = ["ContentEmitterFactory", "Emit", "EmitContent", "RunContext", "StepScope"]

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
EmitContent = Callable[[Any], Awaitable[None]]
ContentEmitterFactory = Callable[[str, dict[str, Any]], EmitContent]


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
    """One run's identity, its event sink and what a resumed run already did."""

    run_id: str
    workflow_id: str
    workflow_name: str
    emit: Emit
    session_id: str | None = None
    user_id: str | None = None
    session_state: dict[str, Any] = field(default_factory=dict)
    completed_steps: dict[str, StepOutput] = field(default_factory=dict)
    """Outputs of steps finished before a restart, by ``StepScope.path``."""
    history: list[dict[str, Any]] | None = None
    """The session's earlier runs, oldest first, as ``{"input", "output"}``; agents with
    ``add_history`` show them to their model. None until ``session_history`` loads them."""
    history_loader: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None
    """How the run manager loads ``history``: only when an agent asks, since each earlier
    run's output may be long and most runs have no agent with ``add_history``."""
    metrics: dict[str, int] = field(default_factory=dict)
    """Token counts summed over the run's model calls; ``WorkflowCompleted`` carries them."""
    step_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per step name, AgentOS's ``StepMetrics``: ``step_name``, ``executor_type``,
    ``executor_name`` and ``metrics``; ``WorkflowCompleted.metrics.steps`` carries them."""
    models: dict[int, object] = field(default_factory=dict)
    """The models the run's agents used, by ``id()`` (a model need not be hashable); the
    run manager shares one dict between its runs and closes them at shutdown."""

    content_emitter_factory: ContentEmitterFactory | None = None
    """The run manager's fast path for ``content_emitter``; without it, ``emit`` is used."""

    def content_emitter(self, name: str, fields: dict[str, Any]) -> EmitContent:
        """An emitter of ``name`` events that carry ``fields`` and differ only in ``content``
        (an agent's tokens): the sink may serialize the constant part once."""
        if self.content_emitter_factory is not None:
            return self.content_emitter_factory(name, fields)

        async def emit_content(content: Any) -> None:
            await self.emit(name, {**fields, "content": content})

        return emit_content

    async def session_history(self) -> list[dict[str, Any]]:
        """``history``, loaded on first use: the session's runs completed by then."""
        if self.history is None:
            self.history = await self.history_loader() if self.history_loader is not None else []
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

    def top_scope(self, name: str, index: int) -> StepScope:
        return StepScope(step_name=name, step_index=index, path=str(index), run_id=self.run_id)
