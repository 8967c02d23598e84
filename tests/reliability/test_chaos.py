"""2,000 records through AnyFastRecordsOperator (a real ``dag.test()`` run) against a flaky server.

The server injects, at random but seeded, every failure the issue lists. Nothing is
asserted from the injection plan itself: concurrency makes the order of requests vary,
so every expectation is derived from the server's request log, request by request.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.testing import AnyFastTestServer

N_RECORDS = 2000
RATES = {
    "rate_limit": 0.10, "server_error": 0.05, "drop": 0.02, "slow": 0.02,
    "invalid_json": 0.03, "truncated": 0.01, "filtered": 0.01,
}  # fmt: skip
#: Client-side limit: about 2,600 requests at 5,400/min take ~29 s.
RPM = 5400
READ_TIMEOUT = 0.5
SLOW_DELAY = 1.0
MAX_RETRIES = 6
RETRYABLE = {"rate_limit", "server_error", "drop", "slow"}
#: The status a record ends with when its last request got this fault (None: a normal answer).
STATUS_OF_LAST_FAULT: dict[str | None, str] = {
    None: "success", "invalid_json": "invalid_output", "truncated": "truncated", "filtered": "filtered",
    **dict.fromkeys(RETRYABLE, "error"),
}  # fmt: skip

BODY = """
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}

with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="chaos", records=SOURCE, prompt="Classify record {{ record.id }}: {{ record.text }}",
        output_schema=SCHEMA, id_field="id", output_path=OUT, chunk_rows=250, max_concurrency=16,
        requests_per_minute=RPM, max_error_rate=0.1, progress_interval=5,
    )
"""


@pytest.mark.slow
def test_chaos_every_record_accounted_for_once(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path
) -> None:
    set_conn(extra={"timeout": READ_TIMEOUT, "max_retries": MAX_RETRIES})
    anyfast_server.set_random_faults(RATES, seed=20240601, retry_hints=(0.01, 0.05), slow_delay=SLOW_DELAY)
    records = kit.make_records(N_RECORDS)
    source = kit.write_jsonl(tmp_path / "input.jsonl", records)
    out = tmp_path / "out"
    path = dag_runner.write(BODY, "chaos", {"SOURCE": f"file://{source}", "OUT": f"file://{out}", "RPM": RPM})

    run = dag_runner.run(path, "chaos")

    assert run.ok, run.output[-5000:]
    rows = kit.exactly_once(kit.folder_rows(out))
    assert set(rows) == {r["id"] for r in records}, "every input id has exactly one row"
    manifest = json.loads((out / "manifest.json").read_text())
    statuses = Counter(row["status"] for row in rows.values())
    assert {k: v for k, v in manifest["counts"].items() if v} == dict(statuses)
    assert run.xcom("chaos")["counts"] == manifest["counts"]

    # Slow requests are logged when the server gives up on them, after the client did: wait for all.
    attempts = sum(row["attempts"] for row in rows.values())
    assert manifest["requests"] == attempts
    anyfast_server.wait_for_requests(attempts, timeout=30)
    log = sorted((r for r in anyfast_server.requests if r.path == "/v1/chat/completions"), key=lambda r: r.time)
    assert len(log) == attempts, "the server saw exactly the attempts the rows report"

    per_record: dict[str, list[Any]] = defaultdict(list)
    for entry in log:
        per_record[kit.record_of(entry.body)].append(entry)
    assert set(per_record) == set(rows), "every request belongs to one input record"
    injected = Counter(entry.fault for entry in log)
    assert all(injected[kind] > 0 for kind in RATES), f"every fault kind was injected: {injected}"

    for rid, row in rows.items():
        requests = per_record[rid]
        faults = [entry.fault for entry in requests]
        assert row["attempts"] == len(requests), (rid, row["attempts"], faults)
        assert row["status"] == STATUS_OF_LAST_FAULT[faults[-1]], (rid, row["status"], faults)
        # Only the last request may have been answered normally: a success is never asked again,
        # and only an invalid answer earns a second ask (re-ask), at most max_output_retries=1 time.
        assert None not in faults[:-1], (rid, faults)
        assert faults[:-1].count("invalid_json") <= 1, (rid, faults)
        assert not {"truncated", "filtered"} & set(faults[:-1]), (rid, faults)
        asks = 1 + faults[:-1].count("invalid_json")
        assert len(requests) <= asks * (MAX_RETRIES + 1), (rid, faults)
    # The rate the limiter holds is a speed: benchmarks/bench_ratelimit.py measures it at the server, and
    # tests/core/records/test_limits.py checks the bucket's arithmetic on an injected clock.
