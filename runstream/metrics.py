"""What the server is doing, as Prometheus metrics (served at ``/metrics``).

The metrics are process-wide (one registry, ``REGISTRY``): a replica is a process, and
Prometheus sums replicas itself. The event path pays per batch (one commit, one
delivery), never per event. What is cheaper to read when scraped than to keep up to
date (runs by status, connected sockets) is read then, by ``Sampler``s the server adds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "APPEND_SECONDS",
    "EVENTS_APPENDED",
    "FANOUT_LAG_SECONDS",
    "LEASE_TAKEOVERS",
    "MODEL_ERRORS",
    "MODEL_TOKENS",
    "REGISTRY",
    "SSE_STREAMS",
    "SUBSCRIBER_OVERFLOWS",
    "Sample",
    "Sampler",
    "render",
]

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

EVENTS_APPENDED = Counter(
    "runstream_events_appended", "Events committed to the log by this replica", registry=REGISTRY
)
APPEND_SECONDS = Histogram(
    "runstream_append_seconds",
    "Wall time of one group-committed log append (one transaction, any number of runs and events)",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
FANOUT_LAG_SECONDS = Histogram(
    "runstream_fanout_lag_seconds",
    "From a batch reaching this replica's hub (after its commit here, or from Redis) to a reader taking it",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SSE_STREAMS = Gauge("runstream_sse_streams", "Open SSE event streams", registry=REGISTRY)
SUBSCRIBER_OVERFLOWS = Counter(
    "runstream_subscriber_overflows",
    "Live inboxes that overflowed, so that their reader went back to the log",
    registry=REGISTRY,
)
LEASE_TAKEOVERS = Counter(
    "runstream_lease_takeovers", "Runs this replica claimed from an owner that was gone or handed them over",
    registry=REGISTRY,
)
MODEL_TOKENS = Counter(
    "runstream_model_tokens", "Tokens reported by model calls", ["provider", "kind"], registry=REGISTRY
)
MODEL_ERRORS = Counter("runstream_model_errors", "Model calls that failed", ["provider"], registry=REGISTRY)


Sample = tuple[str, str, list[str], Iterable[tuple[list[str], float]]]
"""A gauge read at scrape time: name, help, label names, then (label values, value) pairs."""

Sampler = Callable[[], Awaitable[list[Sample]]]
"""An async function the ``/metrics`` route awaits for gauges read at scrape time
(from the database, or from the server's own tables)."""


class _Sampled(Collector):
    """The gauges of one scrape, handed to ``generate_latest`` with the registry's own."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def collect(self) -> Iterable[Any]:
        for name, doc, labels, values in self.samples:
            family = GaugeMetricFamily(name, doc, labels=labels)
            for label_values, value in values:
                family.add_metric(label_values, value)
            yield family


async def render(samplers: Iterable[Sampler]) -> bytes:
    """The Prometheus text exposition of ``REGISTRY`` plus what ``samplers`` read now."""
    samples: list[Sample] = []
    for sampler in samplers:
        samples.extend(await sampler())
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_Sampled(samples))
    return generate_latest(REGISTRY) + generate_latest(scrape)
