"""Pay only for what changed: the day-2 run of a records job beside its day-1 run.

Day 1 runs N records with an empty answer cache (``cache_path``, a file:// folder); day 2
runs the same records, 1 % of them with changed text, to a new ``output_path`` with the
same ``cache_path``. Requests are counted where they are paid for, at the server (its
request log, cleared between the days); hits and savings come from the operator's summary.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_server import ServerProcess
from benchmarks.bench_table import table
from benchmarks.bench_workload import records, run_operator


@dataclass(frozen=True)
class Day:
    """One day's run of the job, as the server and the operator saw it."""

    name: str
    records: int
    changed: int
    requests: int
    seconds: float
    cpu_seconds: float
    summary: dict[str, Any]

    def stat(self, key: str) -> int:
        return int(self.summary.get(key) or 0)

    @property
    def succeeded(self) -> int:
        return int((self.summary.get("counts") or {}).get("success", 0))

    @property
    def tokens_paid(self) -> int:
        """Tokens of the answers sent for this run (cached rows carry no usage)."""
        return int((self.summary.get("usage") or {}).get("total_tokens") or 0)


def changed_records(n: int, every: int = 100) -> list[dict[str, Any]]:
    """The day-1 records with every ``every``-th text edited (same ids): 1 % by default."""
    recs = records(n)
    for rec in recs[::every]:
        rec["text"] += " (customer wrote again: still nothing)"
    return recs


def incremental(server: ServerProcess, latency: float, concurrency: int, n: int) -> list[Day]:
    """Day 1 on an empty cache, then day 2 with 1 % changed; the server's log reset before each."""
    days: list[Day] = []
    with tempfile.TemporaryDirectory(prefix="anyfast-bench-incremental-") as tmp:
        cache = f"file://{Path(tmp, 'cache')}"
        day2 = changed_records(n)
        changed = sum(1 for old, new in zip(records(n), day2, strict=True) if old != new)
        for name, recs, edited in (("day 1 (empty cache)", records(n), 0), ("day 2 (same cache)", day2, changed)):
            server.reset(latency=latency)
            output = f"file://{Path(tmp, f'out-{len(days) + 1}')}"
            run = run_operator(recs, output, concurrency=concurrency, task_id="bench_incremental", cache_path=cache)
            seconds, cpu, summary = run.seconds, run.cpu_seconds, run.summary
            days.append(Day(name, n, edited, server.chat_count(), seconds, cpu, summary))
    return days


def render(days: list[Day], latency: float, concurrency: int) -> list[str]:
    """The section of the report: one row per day."""
    header = ["run", "records", "changed", "requests at server", "success rows", "wall (s)", "cache hits",
              "requests saved", "tokens paid", "tokens saved", "client CPU (s)", "CPU ms/record"]  # fmt: skip
    rows = [
        [d.name, f"{d.records:,}", f"{d.changed:,}", f"{d.requests:,}", f"{d.succeeded:,}", f"{d.seconds:.2f}",
         f"{d.stat('cache_hits'):,}", f"{d.stat('requests_saved'):,}", f"{d.tokens_paid:,}",
         f"{d.stat('tokens_saved'):,}", f"{d.cpu_seconds:.2f}", f"{1000.0 * d.cpu_seconds / d.records:.3f}"]
        for d in days
    ]  # fmt: skip
    title = f"### Incremental: day 2 with 1% changed, same cache_path (L={latency:g}s C={concurrency})"
    return [title, "", *table(header, rows), ""]
