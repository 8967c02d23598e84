"""The run meter without Airflow: deltas add up to the run, a failing observer never fails the run."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.records.cost import Price
from airflow_provider_anyfast.core.records.meter import MeterDelta
from airflow_provider_anyfast.core.records.plan import RecordsJob
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.runner import RunSpec, run_records
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.sink import MemoryRowSink
from airflow_provider_anyfast.core.records.source import iter_source
from airflow_provider_anyfast.core.records.spend import markdown_summary
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.core.retry import RetryPolicy
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

JSON_REQUEST = ChatRequest("gemini-2.5-flash", {"response_format": {"type": "json_object"}}, json_mode=True)

FAST = RetryPolicy(max_retries=3, max_retry_wait=5.0, backoff_initial=0.01, backoff_max=0.05)
PRICE = Price(input=0.3, output=2.5)


def spec(report: Any, progress_interval: float = 30.0) -> RunSpec:
    job = RecordsJob(
        template=PromptTemplate("Text: {{ record.text }}"), request=JSON_REQUEST, id_field="id",
    )  # fmt: skip
    settings = RunSettings(max_concurrency=2, progress_interval=progress_interval, price=PRICE, dedup=False)
    return RunSpec(job=job, schema=None, settings=settings, report=report)


def records(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "text": f"record {i}"} for i in range(n)]


def test_deltas_add_up_to_the_run_and_count_429s(anyfast_server: AnyFastTestServer, caplog: Any) -> None:
    deltas: list[MeterDelta] = []
    anyfast_server.push_fault(Fault("rate_limit", retry_after=0.01))
    anyfast_server.latency = 0.02  # each answer takes at least this long: the latency must see it
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, retry=FAST)
    with caplog.at_level(logging.INFO, logger="airflow_provider_anyfast.records"):
        summary = run_records(client, spec(deltas.append, progress_interval=0.0), lambda: iter_source(records(6)),
                              MemoryRowSink())  # fmt: skip
    assert len(deltas) >= 2 and deltas[-1].final  # a report per progress line, and the last one
    assert sum(d.requests for d in deltas) == summary["requests"] == anyfast_server.request_count() == 7
    assert sum(d.retries for d in deltas) == 1 and sum(d.rate_limited for d in deltas) == 1
    assert sum(d.records.get("success", 0) for d in deltas) == 6
    for key, total in summary["usage"].items():
        assert sum(d.tokens[key] for d in deltas) == total
    assert sum(d.cost or 0 for d in deltas) == pytest.approx(summary["estimated_cost"], abs=1e-6)
    assert sum(len(d.latencies) for d in deltas) == 6 and all(s >= 0.02 for d in deltas for s in d.latencies)
    assert f"cost {summary['estimated_cost']:.4f}" in caplog.text  # the cost so far, in the progress line


def test_an_observer_that_fails_never_fails_the_run(anyfast_server: AnyFastTestServer, caplog: Any) -> None:
    def backend_down(delta: MeterDelta) -> None:
        raise ConnectionRefusedError("the metrics backend is down")

    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, retry=FAST)
    summary = run_records(client, spec(backend_down, progress_interval=0.0), lambda: iter_source(records(4)),
                          MemoryRowSink())  # fmt: skip
    assert [row["status"] for row in summary["rows"]] == ["success"] * 4
    warnings = [r for r in caplog.records if "metrics could not be reported" in r.getMessage()]
    assert len(warnings) == 1  # said once, not once per interval


def test_the_markdown_summary_shows_records_tokens_cost_time_and_output() -> None:
    summary = {
        "model": "gemini-2.5-flash", "records": 3, "requests": 4, "counts": {"success": 2, "error": 1, "filtered": 0},
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}, "estimated_cost": 0.01234,
        "started_at": "2026-01-01T00:00:00+00:00", "ended_at": "2026-01-01T00:01:30+00:00", "path": "s3://b/out",
    }  # fmt: skip
    text = markdown_summary(summary)
    assert "records: 3 (success 2, error 1)" in text and "filtered" not in text
    assert "tokens: 15 (prompt 10, completion 5" in text
    assert "estimated cost: 0.0123" in text and "time: 90.0 s" in text and "`s3://b/out`" in text
    assert "estimated cost" not in markdown_summary({**summary, "estimated_cost": None})


def test_a_delta_is_immutable() -> None:
    delta = MeterDelta(model="m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delta.requests = 3  # type: ignore[misc]
