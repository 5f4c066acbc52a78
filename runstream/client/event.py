"""The typed run event a client sees: name, index and the event's JSON object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from runstream.events import TERMINAL_EVENTS, WORKFLOW_PAUSED

__all__ = ["Event"]


@dataclass(frozen=True)
class Event:
    """One run event. ``data`` is the whole JSON object (``event``, ``event_index``, ``run_id``...)."""

    name: str
    index: int
    data: dict[str, Any]

    @property
    def terminal(self) -> bool:
        """True for the run's last event: ``WorkflowCompleted``, ``WorkflowError`` or ``WorkflowCancelled``."""
        return self.name in TERMINAL_EVENTS

    @property
    def paused(self) -> bool:
        """True for ``WorkflowPaused``: the run waits for a person (``Client.continue_run``)."""
        return self.name == WORKFLOW_PAUSED

    @property
    def run_id(self) -> str:
        return str(self.data.get("run_id", ""))

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Event:
        return cls(name=str(data["event"]), index=int(data["event_index"]), data=data)

    @classmethod
    def from_json(cls, text: str) -> Event:
        return cls.from_data(orjson.loads(text))

    def to_json(self) -> str:
        return orjson.dumps(self.data).decode()
