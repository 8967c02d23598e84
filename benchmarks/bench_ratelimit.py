"""The rate limiter's accuracy, measured where it matters: request arrivals at the server.

The operator runs with ``requests_per_minute`` set and enough records to keep it busy
past the window. The server stamps each request's arrival on its own clock; requests are
counted in ``[first + warm_up, first + warm_up + window)``, which leaves out the initial
burst the token bucket allows (one second's worth) and the tail of the run.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass

from benchmarks.bench_server import ServerProcess
from benchmarks.bench_workload import records, run_operator

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class RateRun:
    configured_rpm: float
    window: float
    warm_up: float
    counted: int
    concurrency: int
    latency: float

    @property
    def measured_rpm(self) -> float:
        return self.counted * 60.0 / self.window

    @property
    def error(self) -> float:
        """Relative error against the configured limit (+ over, - under)."""
        return self.measured_rpm / self.configured_rpm - 1.0


def rate_limit(
    server: ServerProcess,
    rpm: float = 600.0,
    *,
    window: float = 60.0,
    warm_up: float = 5.0,
    concurrency: int = 32,
    latency: float = 0.1,
) -> RateRun:
    """Run the operator at ``rpm`` long enough to cover warm-up, window and a margin; count arrivals."""
    server.reset(latency=latency)
    n = math.ceil(rpm / 60.0 * (warm_up + window + 3.0))
    with tempfile.TemporaryDirectory(prefix="anyfast-bench-rate-") as out:
        run_operator(records(n), f"file://{out}", concurrency=concurrency, requests_per_minute=rpm)
    arrivals = sorted(r["time"] for r in server.requests() if r["path"] == CHAT_PATH)
    start = arrivals[0] + warm_up
    end = start + window
    if arrivals[-1] < end:
        raise RuntimeError(f"the run ended {end - arrivals[-1]:.1f}s before the window did: give it more records")
    counted = sum(1 for t in arrivals if start <= t < end)
    return RateRun(rpm, window, warm_up, counted, concurrency, latency)
