"""``/metrics``: ``runstream.metrics`` in Prometheus's text format, plus gauges read at scrape time.

Read when scraped: runs by workflow and status and the run queue's depth from the log
(so every replica reports the whole deployment's; take ``max`` across replicas, not
``sum``), the runs this replica executes and its open WebSocket connections. With authentication on, the route needs a
valid bearer token (the security key or a JWT), as the API does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from runstream.log.base import RunStatus
from runstream.metrics import Sample, Sampler, render
from runstream.server.routes import authenticate

if TYPE_CHECKING:
    from runstream.server.app import Server

__all__ = ["metrics_router", "server_samplers"]

metrics_router = APIRouter(tags=["metrics"], dependencies=[Depends(authenticate)])


@metrics_router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this replica's metrics."""
    server: Server = request.app.state.server
    return Response(await render(server_samplers(server)), media_type=CONTENT_TYPE_LATEST)


def server_samplers(server: Server) -> list[Sampler]:
    """The scrape-time gauges of ``server``."""

    async def runs() -> list[Sample]:
        counts = await server.manager.log.count_runs()
        return [(
            "runstream_runs",
            "Runs in the log, by workflow and status (the whole deployment's)",
            ["workflow", "status"],
            [([workflow, status], float(n)) for (workflow, status), n in sorted(counts.items())],
        ), (
            "runstream_queue_depth",
            "Runs waiting in the run queue for a free slot on any replica (the whole deployment's)",
            [],
            [([], float(sum(n for (_, status), n in counts.items() if status == RunStatus.QUEUED)))],
        ), (
            "runstream_runs_executing",
            "Runs this replica executes now (the run queue caps them at max_concurrent_runs)",
            [],
            [([], float(server.manager.running_here()))],
        )]

    async def sockets() -> list[Sample]:
        return [("runstream_websocket_connections", "Open WebSocket connections", [], [([], float(len(server.connections)))])]

    return [runs, sockets]
