"""Documents as attachments: N records, one distinct ~20 KB PDF each, peak memory in a fresh process.

Each size runs the operator (``attachments="file"``, rows to a file:// folder) in its own
child process, as ``bench_memory`` does, so ``ru_maxrss`` is the run's own peak. The files
together are far larger than the peak when reading is per record; requests are counted at
the server, which decodes every part (so the bytes did cross the wire).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_server import ServerProcess, connection_env
from benchmarks.bench_table import table

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "example_dags" / "data" / "documents" / "01-checkout-outage-postmortem.pdf"
FILE_BYTES = 20_000


@dataclass(frozen=True)
class AttachmentRun:
    records: int
    files_mb: float
    requests: int
    success: int
    peak_rss_mb: float
    start_rss_mb: float
    seconds: float


def write_documents(folder: Path, n: int) -> Path:
    """``n`` distinct PDFs (the sample padded with a numbered comment) and a JSON Lines batch naming them."""
    base = SAMPLE.read_bytes()
    batch = folder / "records.jsonl"
    with batch.open("w", encoding="utf-8") as out:
        for i in range(n):
            path = folder / f"doc-{i:05d}.pdf"
            pad = f"\n% document {i} ".encode()
            path.write_bytes(base + pad + b"x" * (FILE_BYTES - len(base) - len(pad)))
            out.write(json.dumps({"id": i, "file": str(path)}) + "\n")
    return batch


def attachments_run(server: ServerProcess, n: int, concurrency: int, latency: float = 0.0) -> AttachmentRun:
    server.reset(latency=latency)
    with tempfile.TemporaryDirectory(prefix="anyfast-bench-attach-") as tmp:
        batch = write_documents(Path(tmp), n)
        env = {**os.environ, **connection_env(server.base_url)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        child = subprocess.run(  # through a shell that forks, as bench_memory explains
            ["/bin/sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-m", "benchmarks.bench_attachments",
             f"file://{batch}", f"file://{tmp}/out", str(concurrency)],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return AttachmentRun(n, n * FILE_BYTES / 1e6, server.chat_count(), result["success"], result["peak_rss_mb"],
                         result["start_rss_mb"], result["seconds"])  # fmt: skip


def render(runs: list[AttachmentRun], concurrency: int) -> list[str]:
    header = ["records (one PDF each)", "files read (MB)", "requests at server", "success rows", "peak RSS (MB)",
              "RSS after imports (MB)", "wall (s)"]  # fmt: skip
    rows = [[f"{r.records:,}", f"{r.files_mb:.0f}", f"{r.requests:,}", f"{r.success:,}", f"{r.peak_rss_mb:.0f}",
             f"{r.start_rss_mb:.0f}", f"{r.seconds:.1f}"] for r in runs]  # fmt: skip
    title = f"### Attachments: one ~20 KB PDF per record, read per record (C={concurrency}, fresh process each)"
    return [title, "", *table(header, rows), ""]


def _child(source: str, output: str, concurrency: int) -> None:
    import resource
    import time

    from benchmarks.bench_workload import _as_task_runner, _OutletEvents, setup_airflow_env

    setup_airflow_env()
    import psutil

    from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

    start = psutil.Process().memory_info().rss
    operator = AnyFastRecordsOperator(
        task_id="bench_attachments", records=source, id_field="id", prompt="Summarize document {{ record.id }}.",
        attachments="file", output_path=output, max_concurrency=concurrency,
    )  # fmt: skip
    context: dict[str, object] = {"run_id": "bench", "params": {}, "outlet_events": _OutletEvents()}
    t0 = time.perf_counter()
    summary = operator.execute(context, **_as_task_runner(operator))  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb": peak_kib / 1024.0, "start_rss_mb": start / 1024.0 / 1024.0, "seconds": seconds,
                      "success": int(summary["counts"].get("success", 0))}))  # fmt: skip


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]))
