"""Peak memory: the operator over a JSON Lines file, each size in a fresh process (``ru_maxrss``).

Peak RSS only ever grows within a process, so each input size runs in its own child
process: the difference between a 1,000-record and a 100,000-record run is what the
run itself holds (streaming input, chunked row files), not what an earlier run left.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_server import ServerProcess, connection_env
from benchmarks.bench_workload import run_operator, setup_airflow_env, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class MemoryRun:
    records: int
    concurrency: int
    peak_rss_mb: float
    start_rss_mb: float  # after imports, before execute(): what the run itself adds is above this
    seconds: float
    rows: int
    flushes: int = 0  # part files written during the run (by size or by the 2-second timer)
    parts: int = 0  # part files in the finished folder, after small ones were merged
    merge_seconds: float = 0.0  # finalize: the last flush, merging small parts, the manifest


def peak_memory(server: ServerProcess, n: int, concurrency: int, latency: float = 0.0) -> MemoryRun:
    """Write ``n`` records to a JSONL file; run the operator on it in a child; read its peak RSS."""
    server.reset(latency=latency)
    with tempfile.TemporaryDirectory(prefix="anyfast-bench-mem-") as tmp:
        source = write_jsonl(Path(tmp) / "records.jsonl", n)
        env = {**os.environ, **connection_env(server.base_url)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        # Through a shell that forks: Linux carries the parent's peak RSS into ru_maxrss across a
        # (v)fork + exec, so a child spawned straight from this (large) process would report it.
        child = subprocess.run(
            ["/bin/sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-m", "benchmarks.bench_memory",
             f"file://{source}", f"file://{tmp}/out", str(concurrency)],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return MemoryRun(n, concurrency, result["peak_rss_mb"], result["start_rss_mb"], result["seconds"], result["rows"],
                     result["flushes"], result["parts"], result["merge_seconds"])  # fmt: skip


def _child(source: str, output: str, concurrency: int) -> None:
    """In the child: RSS once the imports are done, one operator run, then the peak RSS (Linux: KiB)."""
    setup_airflow_env()
    import psutil

    from airflow_provider_anyfast.core.records.store import RowStore
    from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator  # noqa: F401  (imports first)

    flushes: list[int] = []
    finalize_seconds: list[float] = []
    flush, finalize = RowStore.flush, RowStore.finalize

    def counted_flush(store: RowStore) -> None:  # counts part files written, by size or by the timer
        pending = store.pending
        flush(store)
        if pending and store.pending == 0:
            flushes.append(pending)

    def timed_finalize(store: RowStore, extra: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return finalize(store, extra)
        finally:
            finalize_seconds.append(time.perf_counter() - t0)

    RowStore.flush, RowStore.finalize = counted_flush, timed_finalize  # type: ignore[method-assign]
    start = psutil.Process().memory_info().rss
    run = run_operator(source, output, concurrency=concurrency)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    own_kib = _vm_hwm_kib()
    if own_kib is not None and abs(own_kib - peak_kib) > 1024:
        raise RuntimeError(f"ru_maxrss {peak_kib} KiB is not this process's own peak (VmHWM {own_kib} KiB)")
    result = {"peak_rss_mb": peak_kib / 1024.0, "start_rss_mb": start / 1024.0 / 1024.0, "seconds": run.seconds,
              "rows": int(run.summary.get("records") or 0), "flushes": len(flushes),
              "parts": len(run.summary.get("files") or []), "merge_seconds": sum(finalize_seconds)}  # fmt: skip
    print(json.dumps(result))


def _vm_hwm_kib() -> int | None:
    """The peak RSS of this address space alone (``VmHWM``), to check ``ru_maxrss`` against."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]))
