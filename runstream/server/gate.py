"""The run actions both transports share, behind authorization and limits.

A WebSocket action and its HTTP route call the same method here, so who may
start, read or steer a run, and how much, is decided in one place. Each read
of a run costs the same single log read whether the run exists, is another
user's, or is of another workflow: the answer for all three is ``UnknownRun``.
"""

from __future__ import annotations

from typing import Any

from runstream.errors import TooManyRuns, UnknownSession
from runstream.log.base import RunRecord
from runstream.runs.manager import CancelOutcome, RunManager
from runstream.server.access import Access
from runstream.server.auth import Principal
from runstream.server.limits import Limits, RateWindow

__all__ = ["Gate"]


class Gate:
    def __init__(self, manager: RunManager, access: Access, limits: Limits) -> None:
        self.manager = manager
        self.access = access
        self.limits = limits
        self._starts = RateWindow(limits.runs_per_minute) if limits.runs_per_minute else None

    async def start_run(
        self,
        principal: Principal,
        client: str,
        workflow_id: str,
        message: Any,
        session_id: str | None = None,
        user_id: str | None = None,
        additional_data: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Start a run for ``principal`` (from address ``client``): its scope, its session, its limits."""
        manager = self.manager
        manager.workflow(workflow_id)
        self.access.require(principal, "run", workflow_id)
        owner = self.access.run_owner(principal, user_id)
        if session_id is not None and self.access.user_isolation and not principal.admin:
            session = await manager.log.get_session(session_id)
            newest = await manager.log.list_runs(session_id=session_id, limit=1)
            if not self.access.may_use_session(principal, session, newest):
                raise UnknownSession(session_id)
        self._check_limits(principal, owner, client)
        return await manager.start_run(workflow_id, message, session_id, owner, additional_data)

    def _check_limits(self, principal: Principal, owner: str | None, client: str) -> None:
        limits, manager = self.limits, self.manager  # the server's own cap queues runs: RunManager
        if principal.admin:
            return  # the security key and admins are not held to per-user limits
        if limits.max_runs_per_user is not None and owner is not None:
            if manager.running_here(owner) >= limits.max_runs_per_user:
                raise TooManyRuns(f"You have {limits.max_runs_per_user} runs running already; wait for one to end", 5.0)
        if self._starts is not None:
            self._starts.take(f"user:{owner}" if owner is not None else f"client:{client}")

    async def run(self, principal: Principal, run_id: str, workflow_id: str | None = None) -> RunRecord:
        """The run, if ``principal`` may read it (and it is of ``workflow_id``, when given)."""
        return self.access.readable(principal, await self._record(run_id, workflow_id), run_id)

    async def steerable_run(self, principal: Principal, run_id: str, workflow_id: str | None = None) -> RunRecord:
        """The run, if ``principal`` may cancel or continue it."""
        return self.access.steerable(principal, await self._record(run_id, workflow_id), run_id)

    async def _record(self, run_id: str, workflow_id: str | None) -> RunRecord | None:
        record = await self.manager.log.get_run(run_id)
        if record is not None and workflow_id is not None and record.workflow_id != workflow_id:
            return None
        return record

    async def cancel(self, principal: Principal, run_id: str, workflow_id: str | None = None) -> CancelOutcome:
        await self.steerable_run(principal, run_id, workflow_id)
        return await self.manager.cancel(run_id)
