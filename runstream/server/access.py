"""What a principal may do: scopes and run ownership, one set of rules for every transport.

HTTP routes and WebSocket actions call these same functions, so a scope or an
ownership rule cannot differ between them. A run the caller may not see is
answered exactly as a run that does not exist (``UnknownRun``, same text, same
code), after the same single read: its existence is never revealed.

Scopes (AgentOS's names): ``workflows:run`` / ``workflows:<id>:run`` /
``workflows:*:run`` start, cancel and continue runs, and read them;
``workflows:read`` (and its per-workflow forms) reads runs and events;
``sessions:read`` (or a global workflows scope) reads sessions; the admin scope
(``agent_os:admin``) and the security key may do everything, for every user.
"""

from __future__ import annotations

from typing import Literal

from runstream.errors import Forbidden, UnknownRun, UnknownSession
from runstream.log.base import RunRecord, Session
from runstream.server.auth import Principal

__all__ = ["Access", "has_scope"]

Verb = Literal["read", "run"]


def has_scope(principal: Principal, resource: str, verb: str, resource_id: str | None = None) -> bool:
    """``resource:verb``, ``resource:*:verb`` or ``resource:<id>:verb``; admins have every scope."""
    if principal.admin:
        return True
    if principal.via == "stream":
        return False  # a stream token reads its one run, through ``may_read`` only
    scopes = principal.scopes
    if f"{resource}:{verb}" in scopes or f"{resource}:*:{verb}" in scopes:
        return True
    return resource_id is not None and f"{resource}:{resource_id}:{verb}" in scopes


def _may(principal: Principal, verb: Verb, workflow_id: str | None) -> bool:
    if verb == "read":  # who may run a workflow may read its runs
        return has_scope(principal, "workflows", "read", workflow_id) or has_scope(principal, "workflows", "run", workflow_id)
    return has_scope(principal, "workflows", "run", workflow_id)


class Access:
    """The rules under one server's ``user_isolation`` setting."""

    def __init__(self, user_isolation: bool) -> None:
        self.user_isolation = user_isolation

    # -- workflows ---------------------------------------------------------

    def allowed(self, principal: Principal, verb: Verb, workflow_id: str | None = None) -> bool:
        return _may(principal, verb, workflow_id)

    def require(self, principal: Principal, verb: Verb, workflow_id: str | None = None) -> None:
        """``Forbidden`` unless ``principal`` may ``verb`` workflow ``workflow_id`` (any, when None)."""
        if not _may(principal, verb, workflow_id):
            wanted = f"workflows:{verb}" + (f" or workflows:{workflow_id}:{verb}" if workflow_id else "")
            raise Forbidden(f"Insufficient permissions. Required scope(s): {wanted}")

    def run_owner(self, principal: Principal, requested: str | None) -> str | None:
        """The ``user_id`` a new run is recorded with: a JWT's user, whatever the client sent.
        Admins and the security key may name any user (default: their own)."""
        if principal.admin:
            return requested if requested is not None else principal.user_id
        if principal.via == "none":
            return requested
        return principal.user_id

    # -- runs --------------------------------------------------------------

    def owns(self, principal: Principal, run: RunRecord) -> bool:
        if principal.admin or not self.user_isolation:
            return True
        return principal.user_id is not None and run.user_id == principal.user_id

    def may_read(self, principal: Principal, run: RunRecord) -> bool:
        if principal.via == "stream":
            return principal.run_id == run.run_id and self.owns(principal, run)
        return _may(principal, "read", run.workflow_id) and self.owns(principal, run)

    def readable(self, principal: Principal, run: RunRecord | None, run_id: str) -> RunRecord:
        """``run`` if ``principal`` may read it; else ``UnknownRun``, as for no run at all."""
        if run is None or not self.may_read(principal, run):
            raise UnknownRun(run_id)
        return run

    def steerable(self, principal: Principal, run: RunRecord | None, run_id: str) -> RunRecord:
        """``run`` if ``principal`` may cancel or continue it. A run it may not even read is
        unknown; one it reads but may not run is ``Forbidden`` (that reveals nothing)."""
        found = self.readable(principal, run, run_id)
        self.require(principal, "run", found.workflow_id)
        return found

    def list_filter(self, principal: Principal, user_id: str | None) -> tuple[bool, str | None]:
        """For a listing asked with ``user_id``: (whether to answer nothing, the user to filter on).
        Under isolation a user lists its own runs only; asking for another's finds none."""
        if principal.admin or not self.user_isolation:
            return False, user_id
        if user_id is not None and user_id != principal.user_id:
            return True, None
        return False, principal.user_id

    # -- sessions ----------------------------------------------------------

    def require_sessions(self, principal: Principal, write: bool = False) -> None:
        """Reading sessions: ``sessions:read`` or a global workflows scope. Renaming or deleting
        them: ``sessions:write`` or ``workflows:run``."""
        if write:
            if not (has_scope(principal, "sessions", "write") or _may(principal, "run", None)):
                raise Forbidden("Insufficient permissions. Required scope(s): sessions:write")
        elif not (has_scope(principal, "sessions", "read") or _may(principal, "read", None)):
            raise Forbidden("Insufficient permissions. Required scope(s): sessions:read")

    def session_readable(self, principal: Principal, session: Session | None, session_id: str) -> Session:
        if session is None or not (
            principal.admin or not self.user_isolation or session.user_id == principal.user_id
        ):
            raise UnknownSession(session_id)
        return session

    def may_use_session(self, principal: Principal, session: Session | None, runs: list[RunRecord]) -> bool:
        """Whether a new run may join a session: not another user's, under isolation (its
        state and history are that user's). ``runs``: the session's newest run, if any."""
        if principal.admin or not self.user_isolation:
            return True
        owners = {session.user_id} if session is not None else set()
        owners.update(r.user_id for r in runs)
        return owners <= {principal.user_id}
