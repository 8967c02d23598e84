"""Pay only for what changed: in-run de-duplication, the answer cache, cost, cached tokens.

Every count here is taken at the local server, which sees each request actually sent.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from upath import UPath

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.jsonmode import OutputSchema
from airflow_provider_anyfast.core.records.cache import ResultCache, expire_segments
from airflow_provider_anyfast.core.records.cost import Price, parse_price_table
from airflow_provider_anyfast.core.records.plan import RecordsJob
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.runner import RunSpec, run_records
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.sink import MemoryRowSink
from airflow_provider_anyfast.core.records.source import iter_source
from airflow_provider_anyfast.core.records.store import RowStore
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.testing.server import AnyFastTestServer

CHAT = "/v1/chat/completions"


class Label(BaseModel):
    label: Literal["billing", "shipping", "other"]
    confidence: int


def _records(n: int, duplicate_share: float = 0.0, changed: set[int] | None = None) -> list[dict[str, Any]]:
    """n tickets; the first ``duplicate_share`` of them repeat the text of ticket 0..k."""
    distinct = n - int(n * duplicate_share)
    rows = []
    for i in range(n):
        text = f"ticket text number {i % distinct}"
        if changed and i in changed:
            text += " (edited)"
        rows.append({"id": f"T{i:04d}", "text": text})
    return rows


def _spec(
    cache: ResultCache | None = None, dedup: bool = True, price: Price | None = None, max_cost: float | None = None
) -> RunSpec:
    schema = OutputSchema(Label)
    job = RecordsJob(
        template=PromptTemplate("Label this ticket: {{ record.text }}"), system_prompt="You label tickets.",
        request=ChatRequest("gemini-2.5-flash", {"response_format": {"type": "json_object"}}, schema, json_mode=True),
        id_field="id",
    )  # fmt: skip
    settings = RunSettings(max_concurrency=8, price=price, max_cost=max_cost, max_error_rate=1.0, dedup=dedup)
    return RunSpec(job=job, schema=schema, settings=settings, cache=cache)


def _run(server: AnyFastTestServer, records: list[dict[str, Any]], spec: RunSpec, sink: Any = None) -> dict:
    client = AnyFastClient(server.base_url, server.token, pool_size=8)
    return run_records(client, spec, lambda: iter_source(records), sink or MemoryRowSink())


def test_identical_requests_are_sent_once_and_every_record_gets_its_row(anyfast_server: AnyFastTestServer) -> None:
    records = _records(200, duplicate_share=0.4)
    summary = _run(anyfast_server, records, _spec())
    assert anyfast_server.request_count(CHAT) == 120
    rows = {row["id"]: row for row in summary["rows"]}
    assert sorted(rows) == [r["id"] for r in records]
    assert all(row["status"] == "success" for row in rows.values())
    shared = [row for row in rows.values() if row["shared"]]
    assert len(shared) == 80
    assert all(row["usage"] is None and row["attempts"] == 0 for row in shared)
    # a shared row carries the same answer as the record whose text it repeats
    assert rows["T0150"]["output"] == rows["T0030"]["output"]
    assert summary["requests_saved"] == 80 and summary["shared_records"] == 80
    assert summary["requests"] == 120


def test_dedup_can_be_turned_off(anyfast_server: AnyFastTestServer) -> None:
    _run(anyfast_server, _records(50, duplicate_share=0.4), _spec(dedup=False))
    assert anyfast_server.request_count(CHAT) == 50


def test_second_run_pays_only_for_changed_records(anyfast_server: AnyFastTestServer, tmp_path: Path) -> None:
    cache_root = UPath(f"file://{tmp_path}/cache")
    day1 = _run(anyfast_server, _records(200), _spec(cache=ResultCache(cache_root)))
    assert anyfast_server.request_count(CHAT) == 200
    anyfast_server.reset()

    changed = set(range(0, 200, 20))
    day2 = _run(anyfast_server, _records(200, changed=changed), _spec(cache=ResultCache(cache_root)))
    assert anyfast_server.request_count(CHAT) == 10
    before = {row["id"]: row for row in day1["rows"]}
    after = {row["id"]: row for row in day2["rows"]}
    for i in range(200):
        rid = f"T{i:04d}"
        if i in changed:
            assert not after[rid]["cached"] and after[rid]["attempts"] == 1
        else:
            assert after[rid]["cached"] and after[rid]["attempts"] == 0
            same = ("status", "output", "model", "finish_reason")
            assert {k: after[rid][k] for k in same} == {k: before[rid][k] for k in same}
    assert day2["cache_hits"] == 190 and day2["requests_saved"] == 190
    assert day2["tokens_saved"] == sum(
        before[f"T{i:04d}"]["usage"]["total_tokens"] for i in range(200) if i not in changed
    )


def test_refresh_bypasses_the_cache_but_still_fills_it(anyfast_server: AnyFastTestServer, tmp_path: Path) -> None:
    root = UPath(f"file://{tmp_path}/cache")
    records = _records(30)
    _run(anyfast_server, records, _spec(cache=ResultCache(root)))
    _run(anyfast_server, records, _spec(cache=ResultCache(root, refresh=True)))
    assert anyfast_server.request_count(CHAT) == 60
    anyfast_server.reset()
    summary = _run(anyfast_server, records, _spec(cache=ResultCache(root)))
    assert anyfast_server.request_count(CHAT) == 0 and summary["cache_hits"] == 30


def test_expiry_by_age_on_read_and_by_deleting_old_segments(anyfast_server: AnyFastTestServer, tmp_path: Path) -> None:
    root = UPath(f"file://{tmp_path}/cache")
    records = _records(20)
    written_at = 1_700_000_000.0
    _run(anyfast_server, records, _spec(cache=ResultCache(root, clock=lambda: written_at)))
    anyfast_server.reset()
    one_day_later = written_at + 86_400
    # entries a day old are ignored by a reader that accepts at most an hour
    _run(anyfast_server, records, _spec(cache=ResultCache(root, max_age=3600, clock=lambda: one_day_later)))
    assert anyfast_server.request_count(CHAT) == 20
    segments = sorted(p.name for p in (root / "segments").iterdir())
    assert expire_segments(root, older_than_seconds=3600, now=one_day_later + 1) == 1
    assert sorted(p.name for p in (root / "segments").iterdir()) == segments[1:]


def test_two_writers_at_once_lose_no_entry(anyfast_server: AnyFastTestServer, s3_endpoint: str, s3_bucket: str) -> None:
    root = UPath(f"s3://{s3_bucket}/cache-{id(anyfast_server)}", endpoint_url=s3_endpoint, key="testing",
                 secret="testing")  # fmt: skip
    halves = [_records(120)[:60], _records(120)[60:]]
    barrier = threading.Barrier(2)
    results: list[dict] = []

    def writer(records: list[dict[str, Any]]) -> None:
        cache = ResultCache(root, segment_rows=7)  # many small segments interleave in time
        barrier.wait()
        results.append(_run(anyfast_server, records, _spec(cache=cache)))

    threads = [threading.Thread(target=writer, args=(half,)) for half in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    anyfast_server.reset()
    summary = _run(anyfast_server, _records(120), _spec(cache=ResultCache(root)))
    assert anyfast_server.request_count(CHAT) == 0
    assert summary["cache_hits"] == 120


def test_a_damaged_cache_line_is_skipped_not_served(anyfast_server: AnyFastTestServer, tmp_path: Path) -> None:
    root = UPath(f"file://{tmp_path}/cache")
    records = _records(5)
    _run(anyfast_server, records, _spec(cache=ResultCache(root)))
    segment = next((root / "segments").iterdir())
    lines = segment.read_bytes().splitlines(keepends=True)
    segment.write_bytes(b"".join(lines[:-1]) + lines[-1][:20])  # a crash cut the last entry
    anyfast_server.reset()
    cache = ResultCache(root)
    _run(anyfast_server, records, _spec(cache=cache))
    assert cache.damaged_lines == 1
    assert anyfast_server.request_count(CHAT) == 1


def test_cached_tokens_and_cost_are_summed_from_what_the_server_reported(
    anyfast_server: AnyFastTestServer, tmp_path: Path
) -> None:
    price = Price(input=0.30, output=2.50, cached_input=0.03)
    out = UPath(f"file://{tmp_path}/out")
    summary = _run(anyfast_server, _records(40), _spec(price=price), RowStore(out))
    rows = [json.loads(line) for name in summary["files"] for line in (out / name).read_bytes().splitlines()]
    reported = sum(row["usage"]["cached_tokens"] for row in rows)
    assert reported > 0  # the shared system prompt is a cacheable prefix
    assert summary["usage"]["cached_tokens"] == reported
    assert summary["estimated_cost"] == pytest.approx(price.cost(summary["usage"]), abs=1e-6)
    assert summary["estimated_cost"] < Price(input=0.30, output=2.50).cost(summary["usage"])


def test_max_cost_stops_new_requests(anyfast_server: AnyFastTestServer) -> None:
    price = Price(input=1000.0, output=1000.0)  # so expensive that the budget lasts a few requests
    summary = _run(anyfast_server, _records(40), _spec(price=price, max_cost=0.5))
    sent = anyfast_server.request_count(CHAT)
    assert 0 < sent < 40
    skipped = [row for row in summary["rows"] if row["error"] and row["error"]["type"] == "budget_exhausted"]
    assert len(skipped) == 40 - sent


def test_price_table_errors_name_the_model_and_field() -> None:
    with pytest.raises(ValueError, match=r"gemini-2\.5-flash.*'input' and 'output'"):
        parse_price_table({"gemini-2.5-flash": {"input": 0.3}})
    assert parse_price_table({"m": {"input": 1, "output": 2}})["m"].cost(
        {"prompt_tokens": 1_000_000, "completion_tokens": 500_000, "total_tokens": 1_500_000}
    ) == pytest.approx(2.0)
