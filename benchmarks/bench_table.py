"""The report: the machine, then Markdown tables (readable in a terminal, pasted as-is into RESULTS.md)."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

from benchmarks.bench_memory import MemoryRun
from benchmarks.bench_peers import PeerRun
from benchmarks.bench_ratelimit import RateRun
from benchmarks.bench_throughput import ThroughputResult

CPU_TARGET_MS = 1.0
RSS_GROWTH_TARGET_MB = 100.0
FANOUT_TARGET = 50.0
RATE_TOLERANCE = 0.05
IDEAL_TARGET = 0.9
BARE_TARGET = 0.9


@dataclass
class Results:
    command: str
    throughput: list[ThroughputResult] = field(default_factory=list)
    peers: list[PeerRun] = field(default_factory=list)
    memory: list[MemoryRun] = field(default_factory=list)
    rate: list[RateRun] = field(default_factory=list)
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    load_before: tuple[float, ...] = field(default_factory=os.getloadavg)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpuinfo(key: str, path: str = "/proc/cpuinfo") -> str:
    try:
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine(results: Results) -> list[str]:
    load = " / ".join(f"{x:.2f}" for x in results.load_before)
    load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- Run: {results.started}, command `{results.command}`",
        f"- Machine: {os.cpu_count()} CPUs (nproc), {_cpuinfo('model name')}, "
        f"{_cpuinfo('MemTotal', '/proc/meminfo')} memory, {platform.system()} {platform.release()}",
        f"- Python {sys.version.split()[0]}, Airflow {_version('apache-airflow')}, requests {_version('requests')}, "
        f"urllib3 {_version('urllib3')}, openai {_version('openai')}, pydantic {_version('pydantic')}",
        f"- Load average (1/5/15 min) before: {load}; after: {load_after} (other load skews CPU figures)",
    ]


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


def _operator_ms(results: Results, latency: float) -> float | None:
    ops = [t for t in results.throughput if t.latency == latency]
    return 1000.0 * ops[0].operator.seconds / ops[0].records if ops else None


def _row(
    name: str,
    latency: float,
    concurrency: int,
    n: int,
    seconds: float,
    cpu: float | None,
    server_cpu: float | None,
    bare_ms: float,
    op_ms: float,
) -> list[object]:
    """One client's line: wall time and its ratios (ideal, bare ceiling, operator), CPU per record."""
    ms = 1000.0 * seconds / n
    ideal_ms = 1000.0 * latency / concurrency
    return [
        name, f"{latency:.1f}", concurrency, f"{n:,}", f"{seconds:.2f}", f"{ms:.2f}", f"{ideal_ms / ms:.3f}",
        f"{bare_ms / ms:.3f}", f"{ms / op_ms:.1f}x", "" if cpu is None else f"{1000.0 * cpu / n:.3f}",
        "" if server_cpu is None else f"{1000.0 * server_cpu / n:.3f}",
    ]  # fmt: skip


def throughput_rows(results: Results) -> list[list[object]]:
    """Per scenario: the ideal, the bare ceiling, the operator, then the peers at the same latency."""
    rows: list[list[object]] = []
    for t in results.throughput:
        bare_ms, op_ms = 1000.0 * t.bare.seconds / t.records, 1000.0 * t.operator.seconds / t.records
        scenario = (t.latency, t.concurrency, t.records)
        rows.append(_row("ideal N*L/C", *scenario, t.ideal, None, None, bare_ms, op_ms))
        for name, run in (("bare requests + threads (ceiling)", t.bare), ("AnyFastRecordsOperator", t.operator)):
            rows.append(_row(name, *scenario, run.seconds, run.cpu_seconds, run.server_cpu_seconds, bare_ms, op_ms))
        for p in results.peers:
            if p.latency == t.latency:
                rows.append(
                    _row(f"peer: {p.name}", p.latency, p.concurrency, p.records, p.seconds, p.cpu_seconds, None,
                         bare_ms, op_ms)
                )  # fmt: skip
    return rows


def targets(results: Results) -> list[list[object]]:
    """Each target of the issue: goal, measured value, met or not."""
    rows: list[list[object]] = []

    def add(name: str, goal: str, shown: str, ok: bool) -> None:
        rows.append([name, goal, shown, "yes" if ok else "NO"])

    for t in results.throughput:
        where = f"L={t.latency:g}s C={t.concurrency} N={t.records}"
        ideal, bare, cpu = t.ratio_to_ideal(t.operator), t.ratio_to_bare, t.operator.per_record_ms(t.records)
        add(f"operator vs ideal, {where}", f">= {IDEAL_TARGET}", f"{ideal:.3f}", ideal >= IDEAL_TARGET)
        add(f"operator vs bare requests, {where}", f">= {BARE_TARGET}", f"{bare:.3f}", bare >= BARE_TARGET)
        add(f"client CPU per record, {where}", f"<= {CPU_TARGET_MS} ms", f"{cpu:.3f} ms", cpu <= CPU_TARGET_MS)
    if len(results.memory) >= 2:
        small, large = min(results.memory, key=lambda m: m.records), max(results.memory, key=lambda m: m.records)
        growth = large.peak_rss_mb - small.peak_rss_mb
        name = f"peak RSS, {large.records:,} minus {small.records:,} records"
        add(name, f"<= {RSS_GROWTH_TARGET_MB:g} MB", f"{growth:+.1f} MB", growth <= RSS_GROWTH_TARGET_MB)
    for p in results.peers:
        op_ms = _operator_ms(results, p.latency)
        if op_ms is None:
            continue
        speedup = p.ms_per_record / op_ms
        if "openai" in p.name:
            name = f"faster than the openai SDK, L={p.latency:g}s C={p.concurrency} N={p.records}"
            add(name, "> 1x", f"{speedup:.2f}x", speedup > 1.0)
        elif "mapped" in p.name:
            name = f"faster per record than fan-out, L={p.latency:g}s N={p.records}"
            add(name, f">= {FANOUT_TARGET:g}x", f"{speedup:.0f}x", speedup >= FANOUT_TARGET)
    for run in results.rate:
        shown = f"{run.measured_rpm:.1f} rpm ({run.error:+.2%})"
        name = f"rate limiter, {run.configured_rpm:g} rpm over {run.window:g}s"
        add(name, f"within {RATE_TOLERANCE:.0%}", shown, abs(run.error) <= RATE_TOLERANCE)
    return rows


def render(results: Results) -> str:
    lines = ["### Machine", "", *machine(results), ""]
    if results.throughput:
        header = ["client", "L (s)", "C", "N", "wall (s)", "ms/record", "vs ideal", "vs bare", "operator faster by",
                  "CPU ms/record", "server CPU ms/req"]  # fmt: skip
        lines += [
            "### Throughput, end to end (rows to a file:// output_path)",
            "",
            *table(header, throughput_rows(results)),
            "",
        ]
    if results.memory:
        rows = [
            [f"{m.records:,}", m.concurrency, f"{m.start_rss_mb:.1f}", f"{m.peak_rss_mb:.1f}",
             f"{m.peak_rss_mb - m.start_rss_mb:+.1f}", f"{m.seconds:.1f}", f"{m.rows:,}", f"{m.flushes:,}",
             f"{m.parts:,}", f"{m.merge_seconds:.2f}"]
            for m in results.memory
        ]  # fmt: skip
        header = ["records", "C", "RSS before execute (MB)", "peak RSS (MB)", "run's own peak (MB)", "wall (s)", "rows",
                  "parts written", "parts kept", "finalize (s)"]  # fmt: skip
        lines += ["### Peak memory (JSON Lines in, file:// out, fresh process each; rows flushed every 2 s or "
                  "1,000 rows, small parts merged at finalize)", "", *table(header, rows), ""]  # fmt: skip
    if results.rate:
        rows = [
            [
                f"{r.configured_rpm:g}",
                f"{r.window:g}",
                f"{r.warm_up:g}",
                r.counted,
                f"{r.measured_rpm:.1f}",
                f"{r.error:+.2%}",
            ]
            for r in results.rate
        ]
        lines += [
            "### Rate limiter (arrivals counted at the server)",
            "",
            *table(
                ["configured rpm", "window (s)", "warm-up (s)", "requests in window", "measured rpm", "error"], rows
            ),
            "",
        ]
    lines += ["### Targets", "", *table(["target", "goal", "measured", "met"], targets(results)), ""]
    return "\n".join(lines)
