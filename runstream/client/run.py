"""``Run``: a run as the server reports it, the client's own type (not the log's row)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["FINISHED", "Run"]

FINISHED = frozenset({"completed", "error", "cancelled"})
"""The statuses of a run that has ended (its terminal event is logged)."""


@dataclass(frozen=True)
class Run:
    """What ``GET /runs/{run_id}`` says of a run; unknown fields of newer servers are ignored."""

    run_id: str
    workflow_id: str
    workflow_name: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    status: str = "running"
    input: Any = None
    output: Any = None
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    event_count: int = 0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        """A run from the server's JSON object."""
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = frozenset(f.name for f in dataclasses.fields(Run))
