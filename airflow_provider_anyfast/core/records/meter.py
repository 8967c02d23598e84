"""What a run did, for observers outside it (metrics backends, lineage), in cheap batches.

The engine counts records and tokens anyway (``RunCounts``); this adds what only the
request path sees: retries, 429 answers and how long each record's (last) request took. A
``report`` callback gets the *difference* since its last call, once per progress
interval and once at the end, so a metrics backend costs a few calls per interval
rather than several per request. A report that fails is logged once and never fails
the run: an observer being down must not lose anybody's rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_anyfast.core.records.cost import Price
from airflow_provider_anyfast.core.records.rows import USAGE_KEYS, RunCounts

log = logging.getLogger("airflow_provider_anyfast.records")


@dataclass(frozen=True, slots=True)
class MeterDelta:
    """What happened since the previous report (all counts are differences, never totals)."""

    model: str
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    records: dict[str, int] = field(default_factory=dict)  # by row status
    tokens: dict[str, int] = field(default_factory=dict)  # by usage key
    cost: float | None = None  # None: no price known for the model
    latencies: tuple[float, ...] = ()  # seconds: each sent record's last request, limiter waits excluded
    final: bool = False


Report = Callable[[MeterDelta], None]


class RunMeter:
    """Counters the engine's worker threads update, read and reset by the engine's own thread."""

    def __init__(self, model: str = "", price: Price | None = None, report: Report | None = None) -> None:
        self.model = model
        self.price = price
        self.report = report
        self.counts = RunCounts()  # the engine replaces this with its own totals
        self._lock = threading.Lock()
        self._retries = 0
        self._rate_limited = 0
        self._latencies: list[float] = []
        self._last = RunCounts()
        self._failed_once = False

    def on_retry(self, rate_limited: bool) -> None:
        """A request will be sent again (worker thread)."""
        with self._lock:
            self._retries += 1
            self._rate_limited += rate_limited

    def on_record(self, seconds: float, http_status: int | None) -> None:
        """A record's last request took ``seconds``; a final 429 counts as rate-limited (worker thread)."""
        with self._lock:
            self._latencies.append(seconds)
            self._rate_limited += http_status == 429

    def cost_so_far(self) -> float | None:
        """Estimated cost of the rows counted so far, or None without a price."""
        return None if self.price is None else self.price.cost(self.counts.usage)

    def flush(self, *, final: bool = False) -> None:
        """Hand the difference since the last flush to ``report``; never raises."""
        if self.report is None:
            return
        with self._lock:
            retries, rate_limited, latencies = self._retries, self._rate_limited, tuple(self._latencies)
            self._retries = self._rate_limited = 0
            self._latencies = []
        now, last = self.counts, self._last
        cost = None
        if self.price is not None:
            cost = self.price.cost(now.usage) - self.price.cost(last.usage)
        delta = MeterDelta(
            model=self.model, requests=now.requests - last.requests, retries=retries, rate_limited=rate_limited,
            records={s: n - last.by_status.get(s, 0) for s, n in now.by_status.items() if n - last.by_status.get(s, 0)},
            tokens={k: int(now.usage.get(k, 0)) - int(last.usage.get(k, 0)) for k in USAGE_KEYS},
            cost=cost, latencies=latencies, final=final,
        )  # fmt: skip
        snapshot = RunCounts()
        snapshot.merge(now)
        self._last = snapshot
        try:
            self.report(delta)
        except Exception as exc:  # a metrics backend that is down must never fail the run
            if not self._failed_once:
                log.warning("AnyFast metrics could not be reported (the run goes on): %s", exc)
            self._failed_once = True
