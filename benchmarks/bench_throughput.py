"""Throughput and client CPU: the operator end to end against a bare ``requests`` client.

Both run in this process against the same server process, one after the other, on the
same records: the bare client is the practical ceiling of this machine (it does the HTTP
calls and a ``json.loads`` of the answer, nothing else), the ideal is ``N * L / C``.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from benchmarks.bench_server import TOKEN, ServerProcess
from benchmarks.bench_workload import MODEL, SYSTEM_PROMPT, records, run_operator, user_text


@dataclass(frozen=True)
class Timing:
    """One client's pass over the records."""

    seconds: float
    cpu_seconds: float
    server_cpu_seconds: float
    ok: int

    def per_record_ms(self, n: int) -> float:
        return 1000.0 * self.cpu_seconds / n


@dataclass(frozen=True)
class ThroughputResult:
    latency: float
    concurrency: int
    records: int
    bare: Timing
    operator: Timing

    @property
    def ideal(self) -> float:
        return self.records * self.latency / self.concurrency

    def ratio_to_ideal(self, timing: Timing) -> float:
        return self.ideal / timing.seconds

    @property
    def ratio_to_bare(self) -> float:
        return self.bare.seconds / self.operator.seconds


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare_requests(server: ServerProcess, recs: list[dict[str, Any]], concurrency: int) -> Timing:
    """The same calls with ``requests`` and a thread pool: no rendering, validation or rows."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=concurrency))
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    url = server.chat_url

    def call(rec: dict[str, Any]) -> bool:
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user_text(rec)}]
        body = {"model": MODEL, "messages": messages, "response_format": {"type": "json_object"}}
        response = session.post(url, json=body, timeout=(10, 120))
        response.raise_for_status()
        return isinstance(json.loads(response.json()["choices"][0]["message"]["content"]), dict)

    server_cpu, cpu, start = server.cpu_seconds(), _cpu(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        ok = sum(pool.map(call, recs))
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    session.close()
    return Timing(seconds, cpu, server.cpu_seconds() - server_cpu, ok)


def operator_pass(server: ServerProcess, recs: list[dict[str, Any]], concurrency: int) -> Timing:
    """``AnyFastRecordsOperator.execute()`` on the records, rows to a file:// folder."""
    with tempfile.TemporaryDirectory(prefix="anyfast-bench-out-") as out:
        server_cpu = server.cpu_seconds()
        run = run_operator(recs, f"file://{out}", concurrency=concurrency)
        return Timing(run.seconds, run.cpu_seconds, server.cpu_seconds() - server_cpu, run.succeeded)


def warm_up(server: ServerProcess) -> None:
    """One small pass of each client first: one-time costs (imports, Airflow's filesystem
    registry, the first connections) are paid once per task, not per record."""
    recs = records(64)
    server.reset(latency=0.0)
    bare_requests(server, recs, 8)
    operator_pass(server, recs, 8)


def throughput(server: ServerProcess, latency: float, concurrency: int, n: int) -> ThroughputResult:
    """Bare ceiling first, then the operator, on a freshly reset server at ``latency``."""
    recs = records(n)
    server.reset(latency=latency)
    bare = bare_requests(server, recs, concurrency)
    server.reset(latency=latency)
    operator = operator_pass(server, recs, concurrency)
    return ThroughputResult(latency, concurrency, n, bare, operator)
