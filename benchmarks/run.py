"""Run the benchmark: ``./scripts/bench [--quick] [--only throughput,...,incremental] [--results FILE]``.

Everything talks to the project's test server, started here in its own process on
127.0.0.1 with a fixed per-request latency (changed between scenarios through
``/_control/``). The operator is driven through its ``execute()`` with a minimal context;
the fan-out peer runs a real ``dag.test()``. Prints Markdown tables; ``--results`` also
writes them into a file, between the markers below (text around them is kept).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_workload import setup_airflow_env

SECTIONS = ("throughput", "peers", "fanout", "memory", "rate", "incremental", "attachments")
BEGIN, END = "<!-- benchmark results: begin -->", "<!-- benchmark results: end -->"


@dataclass(frozen=True)
class Plan:
    """Sizes of every scenario: the full run (RESULTS.md) or ``--quick`` (development)."""

    throughput: tuple[tuple[float, int, int], ...]  # (latency, concurrency, records)
    sequential: tuple[tuple[float, int], ...]  # (latency, records)
    fanout: tuple[float, int]
    memory: tuple[int, ...]
    memory_concurrency: int
    rate_rpm: float
    rate_window: float
    rate_warm_up: float
    incremental: tuple[float, int, int]  # (latency, concurrency, records) of day 1 and day 2
    attachments: tuple[int, ...] = (1_000, 10_000)  # records, one distinct PDF each


FULL = Plan(
    ((1.0, 128, 2560), (0.1, 32, 4000)), ((1.0, 10), (0.1, 50)), (0.1, 20), (1_000, 100_000), 32, 600.0, 60.0, 5.0,
    (0.1, 32, 10_000),
)  # fmt: skip
QUICK = Plan(
    ((1.0, 128, 640), (0.1, 32, 1000)), ((1.0, 3), (0.1, 10)), (0.1, 5), (1_000, 20_000), 32, 600.0, 10.0, 2.0,
    (0.1, 32, 2_000), (200, 2_000),
)  # fmt: skip


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and a 10 s rate window (not for RESULTS)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument("--results", type=Path, help="also write the tables into this Markdown file")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    own_home = "ANYFAST_BENCH_HOME" not in os.environ
    home = setup_airflow_env()  # before anything imports airflow
    try:
        return _run(args, argv)
    finally:
        if own_home:
            shutil.rmtree(home, ignore_errors=True)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    from benchmarks import (
        bench_attachments,
        bench_fanout,
        bench_incremental,
        bench_memory,
        bench_peers,
        bench_ratelimit,
        bench_throughput,
    )
    from benchmarks.bench_server import ServerProcess, connection_env
    from benchmarks.bench_table import Results, render

    plan = QUICK if args.quick else FULL
    command = shlex.join(["./scripts/bench", *(sys.argv[1:] if argv is None else argv)])
    results = Results(command=command)
    incremental: list[str] = []
    with ServerProcess() as server:
        os.environ.update(connection_env(server.base_url))
        if {"throughput", "incremental"} & set(args.sections):
            _say("warm-up: 64 records through each client (one-time costs, not per record)")
            bench_throughput.warm_up(server)
        if "throughput" in args.sections:
            for latency, concurrency, n in plan.throughput:
                _say(f"throughput: L={latency}s C={concurrency} N={n} (bare requests, then the operator)")
                results.throughput.append(bench_throughput.throughput(server, latency, concurrency, n))
        if "peers" in args.sections:
            for latency, concurrency, n in plan.throughput:
                _say(f"peer: openai SDK async, L={latency}s C={concurrency} N={n}")
                results.peers.append(bench_peers.openai_async(server, latency, concurrency, n))
            for latency, n in plan.sequential:
                _say(f"peer: hook one call at a time, L={latency}s N={n}")
                results.peers.append(bench_peers.sequential_hook(server, latency, n))
        if "fanout" in args.sections:
            latency, n = plan.fanout
            _say(f"peer: one mapped task per record with dag.test(), L={latency}s N={n}")
            results.peers.append(bench_fanout.fanout(server, latency, n))
        if "memory" in args.sections:
            for n in plan.memory:
                _say(f"memory: {n:,} records from JSON Lines, fresh process")
                results.memory.append(bench_memory.peak_memory(server, n, plan.memory_concurrency))
        if "rate" in args.sections:
            _say(f"rate limiter: {plan.rate_rpm:g} rpm over a {plan.rate_window:g}s window")
            results.rate.append(
                bench_ratelimit.rate_limit(server, plan.rate_rpm, window=plan.rate_window, warm_up=plan.rate_warm_up)
            )
        if "incremental" in args.sections:
            latency, concurrency, n = plan.incremental
            _say(f"incremental: L={latency}s C={concurrency} N={n}, day 1 on an empty cache, then 1% changed")
            days = bench_incremental.incremental(server, latency, concurrency, n)
            incremental = bench_incremental.render(days, latency, concurrency)
        if "attachments" in args.sections:
            runs = []
            for n in plan.attachments:
                _say(f"attachments: {n:,} records with one PDF each, fresh process")
                runs.append(bench_attachments.attachments_run(server, n, plan.memory_concurrency))
            incremental += bench_attachments.render(runs, plan.memory_concurrency)
    report = _before_targets(render(results), incremental)
    print(report)
    if args.results is not None:
        _write_results(args.results, report)
        _say(f"wrote {args.results}")
    return 0


def _before_targets(report: str, section: list[str]) -> str:
    """Put a section rendered outside ``bench_table`` just before its targets table."""
    if not section:
        return report
    head, mark, tail = report.partition("### Targets")
    return head + "\n".join(section) + "\n" + mark + tail


def _write_results(path: Path, report: str) -> None:
    """Replace the text between the markers (or append the block): notes around it are kept."""
    block = f"{BEGIN}\n{report}\n{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
