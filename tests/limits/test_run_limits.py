"""A records run with account limits, in one process: Redis stopped mid-run, no usage, an unknown limit."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.limits.account import AccountLimits
from airflow_provider_anyfast.core.limits.budget import LimitsUnavailableError
from airflow_provider_anyfast.core.records.plan import RecordsJob
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.runner import RunSpec, run_records
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.sink import MemoryRowSink
from airflow_provider_anyfast.core.records.source import iter_source
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.core.retry import RetryPolicy
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

RETRY = RetryPolicy(max_retries=8, max_retry_wait=10.0, backoff_initial=0.2, backoff_max=2.0)
CHAT = "/v1/chat/completions"


def spec(concurrency: int = 4, **engine: Any) -> RunSpec:
    job = RecordsJob(
        template=PromptTemplate("Text: {{ record.text }}"), id_field="id",
        request=ChatRequest(
            "gemini-2.5-flash", {"response_format": {"type": "json_object"}, "max_tokens": 50}, json_mode=True
        ),
    )  # fmt: skip
    settings = RunSettings(max_concurrency=concurrency, max_error_rate=1.0, dedup=False, **engine)
    return RunSpec(job=job, schema=None, settings=settings)


def run(server: AnyFastTestServer, n: int, concurrency: int = 4, **engine: Any) -> list[dict[str, Any]]:
    client = AnyFastClient(server.base_url, server.token, retry=RETRY)
    sink = MemoryRowSink()
    records = [{"id": f"r{i}", "text": f"record {i}"} for i in range(n)]
    try:
        return list(run_records(client, spec(concurrency, **engine), lambda: iter_source(records), sink)["rows"])
    finally:
        client.close()


def stop_redis_after(server: AnyFastTestServer, redis: Any, n: int) -> threading.Thread:
    def stopper() -> None:
        server.wait_for_requests(n, timeout=60)
        redis.stop()

    thread = threading.Thread(target=stopper)
    thread.start()
    return thread


def test_redis_stopped_mid_run_budget_refuses_to_send_and_every_record_has_a_row(
    anyfast_server: AnyFastTestServer, own_redis: Any
) -> None:
    account = AccountLimits(requests_per_minute=1200, redis=own_redis.client(), key="anyfast:t", budget_scope="job:a")
    stopper = stop_redis_after(anyfast_server, own_redis, 10)
    with pytest.raises(LimitsUnavailableError, match=r"cannot be reached.*An Airflow retry sends only those") as err:
        run(anyfast_server, 60, account=account, max_total_tokens=1_000_000)
    stopper.join()
    rows = err.value.summary["rows"]  # type: ignore[attr-defined]
    assert len(rows) == 60 and len({r["id"] for r in rows}) == 60  # nothing lost
    ok = [r for r in rows if r["status"] == "success"]
    refused = [r for r in rows if r["status"] != "success"]
    assert 10 <= len(ok) < 60
    assert anyfast_server.request_count() == len(ok)  # no request went out uncounted
    assert {r["error"]["type"] for r in refused} <= {"limits_unavailable", "aborted"}
    assert any("Redis" in r["error"]["message"] for r in refused)


def test_redis_stopped_mid_run_rate_limit_falls_back_with_one_warning(
    anyfast_server: AnyFastTestServer, own_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    account = AccountLimits(requests_per_minute=1200, redis=own_redis.client(), key="anyfast:t")
    stopper = stop_redis_after(anyfast_server, own_redis, 10)
    with caplog.at_level(logging.WARNING):
        rows = run(anyfast_server, 60, account=account)
    stopper.join()
    assert [r["status"] for r in rows] == ["success"] * 60
    assert len([r for r in caplog.records if "falls back" in r.getMessage()]) == 1


def test_a_budget_counts_the_estimate_when_no_usage_comes_back(
    anyfast_server: AnyFastTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    anyfast_server.add_rule("record", Fault("no_usage"))  # every answer comes without usage
    with caplog.at_level(logging.WARNING):
        rows = run(anyfast_server, 40, concurrency=1, max_total_tokens=400)
    sent = anyfast_server.request_count()
    assert 0 < sent < 40  # before: all 40 were sent past the budget
    assert sum(1 for r in rows if r["status"] == "success") == sent
    assert len([r for r in caplog.records if "no usage" in r.getMessage()]) == 1


def test_pacing_to_a_limit_the_server_does_not_announce(anyfast_server: AnyFastTestServer) -> None:
    """1200/min enforced by the server, nothing configured here: >= 95 % of it, <= 5 % of requests 429'd."""
    anyfast_server.latency = 0.02
    anyfast_server.set_rate_limit(1200)
    rows = run(anyfast_server, 330, concurrency=8)
    assert [r["status"] for r in rows] == ["success"] * 330
    log = [r for r in anyfast_server.requests if r.path == CHAT]
    limited = sum(1 for r in log if r.status == 429)
    oks = sorted(r.time for r in log if r.status == 200)
    goodput = (len(oks) - 1) / (oks[-1] - oks[0]) * 60.0
    assert limited <= 0.05 * len(log), f"{limited} of {len(log)} requests answered 429"
    print(f"goodput {goodput:.0f}/min of 1200, {limited} of {len(log)} requests 429")
    assert goodput >= 0.95 * 1200, f"goodput {goodput:.0f}/min against a limit of 1200"
