"""AnyFast runs as metrics, through Airflow's own ``Stats`` (StatsD, Datadog or OpenTelemetry).

The deployment's ``[metrics]`` settings decide where they go; with none set, ``Stats``
drops them for free. The record engine batches them (``core.records.meter``): one call
per metric per progress interval, and one at the end, never one per request. The names
(``airflow.`` or your ``statsd_prefix`` goes in front) are listed in docs/observability.md;
``METRICS`` below is the same list, and a test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_anyfast.compat import get_stats
from airflow_provider_anyfast.core.records.meter import MeterDelta
from airflow_provider_anyfast.core.records.rows import USAGE_KEYS, RowStatus

PREFIX = "anyfast"
TOKEN_KINDS = {key: key.removesuffix("_tokens") for key in USAGE_KEYS}  # prompt, completion, total, reasoning, cached

#: Every metric name this provider emits (counters unless said otherwise).
METRICS = (
    f"{PREFIX}.requests",
    f"{PREFIX}.retries",
    f"{PREFIX}.rate_limited",
    *(f"{PREFIX}.records.{status.value}" for status in RowStatus),
    *(f"{PREFIX}.tokens.{kind}" for kind in TOKEN_KINDS.values()),
    f"{PREFIX}.cost_micros",
    f"{PREFIX}.request.latency",  # timing, ms: mean over the records answered in the interval
    f"{PREFIX}.request.latency_max",  # timing, ms: the slowest of those requests
)


class StatsReporter:
    """Turns a run's metric deltas into ``Stats`` calls, and keeps the run's totals for lineage."""

    def __init__(self, tags: Mapping[str, Any]) -> None:
        self.tags = {key: str(value) for key, value in tags.items() if value not in (None, "")}
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0
        self.records: dict[str, int] = {}
        self.tokens: dict[str, int] = dict.fromkeys(USAGE_KEYS, 0)
        self.cost: float | None = None

    def __call__(self, delta: MeterDelta) -> None:
        """Add ``delta`` to the totals first (lineage needs them), then send it; a send may raise."""
        self.requests += delta.requests
        self.retries += delta.retries
        self.rate_limited += delta.rate_limited
        for status, n in delta.records.items():
            self.records[status] = self.records.get(status, 0) + n
        for key, n in delta.tokens.items():
            self.tokens[key] = self.tokens.get(key, 0) + n
        if delta.cost is not None:
            self.cost = (self.cost or 0.0) + delta.cost
        self.send(delta)

    def send(self, delta: MeterDelta) -> None:
        stats = get_stats()
        tags = {**self.tags, "model": delta.model} if delta.model else self.tags
        counts = {"requests": delta.requests, "retries": delta.retries, "rate_limited": delta.rate_limited}
        counts.update({f"records.{status}": n for status, n in delta.records.items()})
        counts.update({f"tokens.{TOKEN_KINDS[key]}": n for key, n in delta.tokens.items() if key in TOKEN_KINDS})
        if delta.cost is not None:
            counts["cost_micros"] = round(delta.cost * 1_000_000)
        for name, n in counts.items():
            if n > 0:  # a zero adds nothing and costs a packet
                stats.incr(f"{PREFIX}.{name}", count=n, tags=tags)
        if delta.latencies:
            mean = 1000.0 * sum(delta.latencies) / len(delta.latencies)
            stats.timing(f"{PREFIX}.request.latency", mean, tags=tags)
            stats.timing(f"{PREFIX}.request.latency_max", 1000.0 * max(delta.latencies), tags=tags)

    def totals(self) -> dict[str, Any]:
        """The run's totals so far, as lineage facets and the failure summary show them."""
        return {
            "requests": self.requests, "retries": self.retries, "rate_limited": self.rate_limited,
            "counts": dict(self.records), "usage": dict(self.tokens),
            **({"estimated_cost": round(self.cost, 6)} if self.cost is not None else {}),
        }  # fmt: skip
