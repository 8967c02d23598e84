"""A cache that cannot cost money by failing: unwritable, unreadable, damaged, or out of date with the schema.

Counts are taken at the local server (requests actually sent) and in the rows returned.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, field_validator
from upath import UPath

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.jsonmode import OutputSchema
from airflow_provider_anyfast.core.records.cache import CacheNotWritableError, ResultCache
from airflow_provider_anyfast.core.records.plan import RecordsJob
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.runner import RunSpec, run_records
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.sink import MemoryRowSink
from airflow_provider_anyfast.core.records.source import iter_source
from airflow_provider_anyfast.core.records.store import RowStore
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.testing.server import AnyFastTestServer


class Label(BaseModel):
    label: Literal["billing", "shipping", "other"]
    confidence: int


class StricterLabel(Label):
    # The same JSON schema (so the same requests and cache keys), but a validator that refuses every answer.
    model_config = ConfigDict(title="Label")

    @field_validator("confidence")
    @classmethod
    def never(cls, value: int) -> int:
        raise ValueError("confidence is no longer accepted")


def spec(cache: ResultCache | None, model: type[BaseModel] = Label) -> RunSpec:
    schema = OutputSchema(model)
    job = RecordsJob(
        template=PromptTemplate("Label this ticket: {{ record.text }}"),
        request=ChatRequest("gemini-2.5-flash", {"response_format": {"type": "json_object"}}, schema, json_mode=True),
        id_field="id",
    )  # fmt: skip
    return RunSpec(job=job, schema=schema, settings=RunSettings(max_concurrency=4, max_error_rate=1.0), cache=cache)


def records(n: int) -> list[dict[str, Any]]:
    return [{"id": f"T{i:03d}", "text": f"ticket {i}"} for i in range(n)]


def run(server: AnyFastTestServer, recs: list[dict[str, Any]], run_spec: RunSpec, sink: Any = None) -> dict:
    client = AnyFastClient(server.base_url, server.token, pool_size=4)
    try:
        return run_records(client, run_spec, lambda: iter_source(recs), sink or MemoryRowSink())
    finally:
        client.close()


def test_an_unwritable_cache_path_fails_before_anything_is_paid(
    anyfast_server: AnyFastTestServer, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    out = tmp_path / "out"
    with pytest.raises(CacheNotWritableError, match=r"cache_path=.*cache cannot be written.*Nothing was sent"):
        run(anyfast_server, records(5), spec(ResultCache(UPath(not_a_folder))), RowStore(UPath(out)))
    assert anyfast_server.request_count() == 0
    assert not (out / "rows").exists()


def test_unreadable_segments_and_damaged_lines_are_skipped_with_one_warning(
    anyfast_server: AnyFastTestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = UPath(tmp_path / "cache")
    run(anyfast_server, records(10), spec(ResultCache(root, segment_rows=5)))
    segments = sorted((tmp_path / "cache" / "segments").glob("*.jsonl"))
    assert len(segments) == 1, "the run's two segments were merged into one at its end"
    lines = segments[0].read_bytes().splitlines(keepends=True)
    segments[0].write_bytes(b"".join(lines[:7]) + b'{"key": "cut off by a cr\n' + b"".join(lines[8:]))
    (tmp_path / "cache" / "segments" / "20990101T000000-unreadable-00000.jsonl").mkdir()  # cannot be opened
    anyfast_server.reset()
    caplog.set_level(logging.WARNING, logger="airflow_provider_anyfast.cache")

    summary = run(anyfast_server, records(10), spec(ResultCache(root)))

    assert anyfast_server.request_count() == 1, "only the answer on the damaged line is paid again"
    assert summary["cache_hits"] == 9 and {r["status"] for r in summary["rows"]} == {"success"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "skipped 1 unreadable segment file(s)" in warnings[0] and "1 damaged line(s)" in warnings[0]
    assert "1 of this run's 10 distinct requests have no usable cached answer" in warnings[0]


def test_a_cached_answer_the_current_validator_rejects_is_a_miss(
    anyfast_server: AnyFastTestServer, tmp_path: Path
) -> None:
    root = UPath(tmp_path / "cache")
    first = run(anyfast_server, records(6), spec(ResultCache(root)))
    assert {r["status"] for r in first["rows"]} == {"success"}
    assert OutputSchema(Label).json_schema == OutputSchema(StricterLabel).json_schema  # same requests, same keys
    anyfast_server.reset()

    second = run(anyfast_server, records(6), spec(ResultCache(root), StricterLabel))

    # every cached answer failed the new validator, so each record was asked again (and re-asked once,
    # since the fresh answers fail the validator too)
    assert anyfast_server.request_count() == 6 * 2
    assert second["cache_hits"] == 0
    assert not any(r["cached"] for r in second["rows"])
    assert {r["status"] for r in second["rows"]} == {"invalid_output"}, "the fresh answers fail the validator too"


def test_a_cache_that_fails_to_write_never_loses_rows(anyfast_server: AnyFastTestServer, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    out = tmp_path / "out"
    cache = ResultCache(UPath(cache_dir), segment_rows=2)
    breaker = RowStore(UPath(out), chunk_rows=3)
    original = breaker.append

    def append(row: Any) -> None:  # once rows flow, the cache's storage breaks (a real OS error)
        original(row)
        if (cache_dir / "segments").is_dir():
            (cache_dir / "segments").rename(tmp_path / "aside")
            (cache_dir / "segments").write_text("no longer a folder")

    breaker.append = append  # type: ignore[method-assign]
    summary = run(anyfast_server, records(8), spec(cache), breaker)

    assert summary["records"] == 8 and summary["counts"]["success"] == 8
    assert anyfast_server.request_count() == 8
    assert cache.write_failures >= 1
