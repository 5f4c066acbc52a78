"""``Client``: start, follow, replay, cancel and list runs of a runstream server.

``follow`` survives dropped connections: it reconnects with backoff and
resumes after the last event it yielded, so its caller sees every event once,
in order, through the terminal event. WebSocket by default, SSE as an option.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import httpx
from websockets.exceptions import WebSocketException

from runstream.client.cursor import Backoff, FollowCursor
from runstream.client.errors import ConnectionLost, ServerError
from runstream.client.event import Event
from runstream.client.http import http_client, raise_for_error
from runstream.client.run import Run
from runstream.client.sse import sse_events
from runstream.client.ws import ws_events
from runstream.errors import AmbiguousRunId, UnknownRun

if TYPE_CHECKING:
    from runstream.client.sync import SyncClient

__all__ = ["Client", "DEFAULT_URL", "Transport"]

DEFAULT_URL = "http://127.0.0.1:7777"
Transport = Literal["ws", "sse"]
RETRIABLE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, ConnectionLost, WebSocketException, httpx.TransportError,
)


class Client:
    """``async with Client("http://host:7777") as client: run_id = await client.start(...)``.

    ``retries``: consecutive failed reconnects before ``follow`` gives up (None: never).
    ``on_reconnect(error, delay)`` is told about each drop, e.g. to show it.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        transport: Transport = "ws",
        retries: int | None = 20,
        backoff: tuple[float, float] = (0.1, 5.0),
        on_reconnect: Callable[[BaseException, float], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.transport = transport
        self.retries = retries
        self.backoff = backoff
        self.on_reconnect = on_reconnect
        self.http = http_client(self.url, token)
        self._workflow_of: dict[str, str] = {}

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/workflows/ws"

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    def sync(self) -> SyncClient:
        """This client's settings behind a blocking API (``SyncClient``)."""
        from runstream.client.sync import SyncClient

        return SyncClient(self.url, self.token, self.transport, self.retries, self.backoff, self.on_reconnect)

    # -- requests ------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        await raise_for_error(response)
        return response.json()

    async def workflows(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._request("GET", "/workflows")
        return result

    async def start(
        self, workflow_id: str, message: Any, session_id: str | None = None, user_id: str | None = None
    ) -> str:
        """Start a run in the background and return its id at once."""
        body = {"message": message, "stream": False, "background": True, "session_id": session_id, "user_id": user_id}
        run = await self._request("POST", f"/workflows/{workflow_id}/runs", json=body)
        self._workflow_of[run["run_id"]] = workflow_id
        return str(run["run_id"])

    async def get_run(self, run_id: str) -> Run:
        data = await self._request("GET", f"/runs/{run_id}")
        self._workflow_of[run_id] = data["workflow_id"]
        return Run.from_json(data)

    async def runs(
        self,
        workflow_id: str | None = None,
        status: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        run_id_prefix: str | None = None,
    ) -> list[Run]:
        """Runs, newest first, filtered and paginated by the server."""
        params = {"workflow_id": workflow_id, "status": status, "session_id": session_id, "user_id": user_id,
                  "limit": limit, "offset": offset, "run_id_prefix": run_id_prefix}
        rows = await self._request("GET", "/runs", params={k: v for k, v in params.items() if v is not None})
        return [Run.from_json(row) for row in rows]

    async def resolve(self, run_id: str) -> str:
        """The id of the one run whose id starts with ``run_id`` (a whole id, or a unique prefix of one);
        ``UnknownRun`` when none does, ``AmbiguousRunId`` when several do."""
        runs = await self.runs(run_id_prefix=run_id, limit=5)
        exact = [r for r in runs if r.run_id == run_id]
        if exact or len(runs) == 1:
            found = (exact or runs)[0]
            self._workflow_of[found.run_id] = found.workflow_id
            return found.run_id
        if not runs:
            raise UnknownRun(run_id)
        shown = ", ".join(r.run_id for r in runs[:4]) + (", ..." if len(runs) > 4 else "")
        raise AmbiguousRunId(f"Run id {run_id} is ambiguous: {shown} all start with it; give more of it")

    async def cancel(self, run_id: str) -> None:
        """Cancel a running run (it ends with ``WorkflowCancelled``); ``ServerError`` if it is not running."""
        workflow_id = await self._workflow_id(run_id)
        await self._request("POST", f"/workflows/{workflow_id}/runs/{run_id}/cancel")

    async def pending(self, run_id: str) -> dict[str, Any] | None:
        """The requirement a paused run waits on (its ``StepRequirement`` as a dict), else None."""
        data = await self._request("GET", f"/runs/{run_id}")
        self._workflow_of[run_id] = data["workflow_id"]
        requirements = data.get("step_requirements") if data.get("status") == "paused" else None
        return dict(requirements[-1]) if requirements else None

    async def continue_run(
        self,
        run_id: str,
        *,
        confirmed: bool | None = None,
        rejection_feedback: str | None = None,
        user_input: dict[str, Any] | None = None,
        selected_choices: list[str] | None = None,
        edited_output: Any = None,
        decision: str | None = None,
        step_requirements: list[dict[str, Any]] | None = None,
    ) -> None:
        """Answer a paused run and return at once (``follow`` it for what comes next).

        Give the answer's fields (``confirmed=True``; ``user_input={...}``;
        ``selected_choices=["Billing"]``; ``decision="retry"`` for an error pause...), or
        AgentOS's ``step_requirements`` list as is. ``ServerError`` with code
        ``invalid_continue`` when the server's stored requirement does not accept it,
        ``run_not_paused`` when the run is not (or no longer) paused.
        """
        if step_requirements is None:
            pending = await self.pending(run_id)
            if pending is None:
                run = await self.get_run(run_id)
                raise ServerError(f"Run is not paused (status={run.status})", "run_not_paused", 409)
            answer = {"confirmed": confirmed, "rejection_feedback": rejection_feedback, "user_input": user_input,
                      "selected_choices": selected_choices, "edited_output": edited_output, "decision": decision}
            step_requirements = [
                {"requirement_id": pending["requirement_id"], **{k: v for k, v in answer.items() if v is not None}}
            ]
        workflow_id = await self._workflow_id(run_id)
        body = {"step_requirements": step_requirements, "stream": False, "background": True}
        await self._request("POST", f"/workflows/{workflow_id}/runs/{run_id}/continue", json=body)

    async def _workflow_id(self, run_id: str) -> str:
        if run_id not in self._workflow_of:
            await self.get_run(run_id)
        return self._workflow_of[run_id]

    # -- streams -------------------------------------------------------------

    async def follow(self, run_id: str, after: int | None = None) -> AsyncGenerator[Event, None]:
        """Every event of ``run_id`` after index ``after`` (all when None), once each, through the
        terminal event, reconnecting by itself when the connection drops."""
        cursor = FollowCursor(run_id, -1 if after is None else after)
        backoff = Backoff(*self.backoff)
        while not cursor.done:
            try:
                async for event in self._connect(cursor):
                    backoff.reset()
                    yield event
            except RETRIABLE as exc:
                if self.retries is not None and backoff.failures >= self.retries:
                    raise
                delay = backoff.next_delay()
                if self.on_reconnect is not None:
                    self.on_reconnect(exc, delay)
                await asyncio.sleep(delay)

    def replay(self, run_id: str) -> AsyncGenerator[Event, None]:
        """Every event of a run from index 0 (live through its end if it is still running)."""
        return self.follow(run_id)

    async def _connect(self, cursor: FollowCursor) -> AsyncIterator[Event]:
        if self.transport == "ws":
            async for event in ws_events(self.ws_url, cursor, self.token):
                yield event
            return
        workflow_id = await self._workflow_id(cursor.run_id)
        async for event in sse_events(self.http, f"/workflows/{workflow_id}/runs/{cursor.run_id}/events", cursor):
            yield event
