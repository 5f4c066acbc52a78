"""OpenTelemetry traces, with the ``otel`` extra: a span per run, step, model call and tool call.

Without ``opentelemetry-api`` installed every span here is a no-op (``nullcontext``).
With it, spans go to whatever tracer provider the application configured (none: the
API's no-op). The trace context of the request that starts a run (its ``traceparent``
header; for a WebSocket, the upgrade request's) becomes the run's parent: the server
attaches it for the request (``traced_request``), and the run's task inherits it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    ENABLED = True
except ImportError:  # the `otel` extra is not installed
    ENABLED = False

__all__ = ["ENABLED", "TRACER_NAME", "span", "traced_request"]

TRACER_NAME = "runstream"


@contextmanager
def span(name: str, attributes: Mapping[str, Any]) -> Iterator[None]:
    """A span around the block, child of the current one (exceptions are recorded on it)."""
    if not ENABLED:
        yield
        return
    attrs = {key: value for key, value in attributes.items() if value is not None}
    with trace.get_tracer(TRACER_NAME).start_as_current_span(name, attributes=attrs):
        yield


@contextmanager
def traced_request(headers: list[tuple[bytes, bytes]]) -> Iterator[None]:
    """Make the request's ``traceparent`` (and ``tracestate``) the current trace context."""
    if not ENABLED or not any(key == b"traceparent" for key, _ in headers):
        yield
        return
    carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in headers}
    token = otel_context.attach(extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)
