"""Retry storms, and which layer retries what (they must add up, never multiply).

- the client (tenacity) retries one request's transport failures: 429, 5xx, drops, timeouts,
  at most ``max_retries`` times, waiting the server's hint (capped) or a jittered backoff;
- the engine re-asks once (``max_output_retries``) when the answer is not valid JSON;
- an Airflow task retry resumes from the row store: only records without a success row go out again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.records.engine import RecordEngine
from airflow_provider_anyfast.core.records.limits import AdaptiveConcurrency
from airflow_provider_anyfast.core.records.plan import RecordsJob, work
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.sink import MemoryRowSink
from airflow_provider_anyfast.core.records.source import iter_source
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.core.retry import RetryPolicy
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

JSON_REQUEST = ChatRequest("gemini-2.5-flash", {"response_format": {"type": "json_object"}}, json_mode=True)

PROMPT = "Classify record {{ record.id }}: {{ record.text }}"


class Waits(list[float]):
    """The policy's sleep: each wait the client decided on, kept as a value; slept too when ``real``."""

    def __init__(self, real: bool = False) -> None:
        super().__init__()
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.real:
            time.sleep(seconds)


@pytest.fixture
def make_client(anyfast_server: AnyFastTestServer) -> Iterator[Any]:
    """``make_client(max_retries, waits)``: a client of the local server with millisecond backoff, a 1 s wait cap and
    0.22 s of rate-limit waiting (four 0.05 s hints) per call; its retry waits go to ``waits``."""
    made: list[AnyFastClient] = []

    def make(max_retries: int = 4, waits: Waits | None = None) -> AnyFastClient:
        policy = RetryPolicy(max_retries=max_retries, max_retry_wait=1.0, backoff_initial=0.01, backoff_max=0.05,
                             rate_limit_budget=0.22, sleep=waits)  # fmt: skip
        made.append(AnyFastClient(anyfast_server.base_url, anyfast_server.token, retry=policy, pool_size=8))
        return made[-1]

    yield make
    for client in made:
        client.close()


class WatchedConcurrency(AdaptiveConcurrency):
    """The engine's real adaptive cap, noting its limit after every signal it gets."""

    def __init__(self, maximum: int) -> None:
        super().__init__(maximum)
        self.seen: list[int] = []

    def on_rate_limited(self) -> None:
        super().on_rate_limited()
        self.seen.append(self.limit)

    def on_success(self) -> None:
        super().on_success()
        self.seen.append(self.limit)


def run_engine(
    client: AnyFastClient, records: list[dict[str, Any]], **settings: Any
) -> tuple[RecordEngine, list, list[int]]:
    job = RecordsJob(PromptTemplate(PROMPT), JSON_REQUEST, "id")
    sink = MemoryRowSink()
    engine = RecordEngine(client, None, sink, RunSettings(**settings), total=len(records))
    engine.concurrency = watched = WatchedConcurrency(engine.concurrency.maximum)
    engine.run(work(job, iter_source(records)))
    return engine, sink.rows, watched.seen


def test_sustained_429s_halve_concurrency_and_it_grows_back(
    anyfast_server: AnyFastTestServer, make_client: Any, kit: Any
) -> None:
    """A burst of 60 rate limits (hinted 10 ms): AdaptiveConcurrency halves, then climbs back to the maximum."""
    anyfast_server.push_fault(Fault("rate_limit", retry_after_ms=10), times=60)
    records = kit.make_records(200)
    # slept for real: the 10 ms waits spread the FIFO burst over the workers, as in production
    waits = Waits(real=True)

    client = make_client(max_retries=60, waits=waits)  # the burst is FIFO: one record may draw many in a row
    engine, rows, seen = run_engine(client, records, max_concurrency=8)

    assert [r["status"] for r in rows] == ["success"] * 200
    assert sum(r["attempts"] for r in rows) == anyfast_server.request_count() == 260
    assert engine.concurrency.decreases >= 1
    assert min(seen) <= 4, f"the limit never halved: {Counter(seen)}"
    assert seen[-1] == engine.concurrency.limit == 8, "the limit grew back to max_concurrency"
    assert waits == [0.01] * 60, "each retry waited the server's hint"


def test_retry_waits_are_capped_and_attempts_bounded(
    anyfast_server: AnyFastTestServer, make_client: Any, kit: Any
) -> None:
    """Hinted waits are honoured up to max_retry_wait and rate limits retried within rate_limit_budget; backoff stays
    under backoff_max, server failures get at most max_retries+1 attempts."""
    anyfast_server.add_rule("rec-00000", Fault("rate_limit", retry_after=0.05))  # always, within the cap
    anyfast_server.add_rule("rec-00001", Fault("server_error", status=503))  # always, no hint: backoff
    anyfast_server.add_rule("rec-00002", Fault("rate_limit", retry_after=30))  # past the 1 s cap: fail at once
    waits = Waits()

    _, rows, _ = run_engine(make_client(max_retries=4, waits=waits), kit.make_records(3), max_concurrency=1)

    hinted, backoff, too_long = rows
    assert (hinted["status"], hinted["error"]["type"], hinted["attempts"]) == ("error", "rate_limit", 5)
    assert (backoff["status"], backoff["error"]["type"], backoff["attempts"]) == ("error", "server_error", 5)
    assert (too_long["status"], too_long["error"]["type"], too_long["attempts"]) == ("error", "retry_wait_too_long", 1)
    assert "max_retry_wait" in too_long["error"]["message"]
    per_record = Counter(kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST")
    assert per_record == {"rec-00000": 5, "rec-00001": 5, "rec-00002": 1}, "0.22 s budget / 0.05 s hints; max_retries=4"
    assert len(waits) == 8  # 4 retries each for the first two records, none for the refused wait
    assert waits[:4] == [0.05] * 4, "the server's Retry-After is what we wait"
    assert all(0.005 <= w <= 0.05 for w in waits[4:]), "backoff stays between its floor and backoff_max"
    assert sum(waits[:4]) <= 0.22 < sum(waits[:4]) + 0.05, "rate limits waited up to rate_limit_budget, no further"


def test_what_is_never_retried(anyfast_server: AnyFastTestServer, make_client: Any, kit: Any) -> None:
    """A bad request, a cut-off or blocked answer: one request each. An exhausted quota: the run stops sending."""
    faults = [Fault("status", status=400), Fault("status", status=404), Fault("status", status=413),
              Fault("status", status=422), Fault("truncated"), Fault("filtered"),
              Fault("rate_limit", code="insufficient_quota")]  # fmt: skip
    for i, fault in enumerate(faults):
        anyfast_server.add_rule(f"rec-{i:05d}", fault)

    _, rows, _ = run_engine(make_client(max_retries=4), kit.make_records(len(faults) + 2), max_concurrency=1)

    assert [(r["status"], r["error"]["type"], r["attempts"]) for r in rows] == [
        *[("error", "bad_request", 1)] * 4, ("truncated", "truncated", 1), ("filtered", "filtered", 1),
        ("error", "quota_exhausted", 1), ("error", "aborted", 0), ("error", "aborted", 0),
    ]  # fmt: skip
    assert anyfast_server.request_count() == len(faults), "one request per record, none after the quota ran out"


RETRY_DAG = """
with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="classify", records=RECORDS, prompt=PROMPT, id_field="id", output_path=OUT,
        chunk_rows=3, max_concurrency=2, retries=2, retry_delay=timedelta(seconds=0),
    )
"""


def test_airflow_task_retry_resends_only_unfinished_records(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path
) -> None:
    """Try 1: two records exhaust their retries, the task fails. Try 2 (Airflow's retry) sends only those two."""
    max_retries = 3
    set_conn(extra={"max_retries": max_retries})
    for rid in ("rec-00003", "rec-00007"):
        anyfast_server.add_rule(rid, Fault("server_error", status=502), times=max_retries + 1)
    records = kit.make_records(10)
    out = tmp_path / "out"
    path = dag_runner.write(RETRY_DAG, "task_retry", {"RECORDS": records, "PROMPT": PROMPT, "OUT": str(out)})

    run = dag_runner.run(path, "task_retry")

    assert run.ok, run.output[-3000:]
    assert run.tries("classify") == 2, "Airflow retried the task once"
    assert "ended without a valid answer" in run.output  # try 1 failed on the error rate
    rows = kit.exactly_once(kit.folder_rows(out))
    assert set(rows) == {r["id"] for r in records} and {r["status"] for r in rows.values()} == {"success"}
    per_record = Counter(kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST")
    # The failed ones: max_retries + 1 requests in try 1 (no more: the layers add, not multiply), 1 in try 2.
    assert per_record == {r["id"]: 1 for r in records} | {"rec-00003": max_retries + 2, "rec-00007": max_retries + 2}
