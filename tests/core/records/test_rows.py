from __future__ import annotations

import json

import pytest

from airflow_provider_anyfast.core.records.rows import (
    ResultRow,
    RowStatus,
    RunCounts,
    add_usage,
    failure_row,
    invalid_record_row,
    skipped_row,
    success_row,
    usage_dict,
)

ROW_KEYS = {
    "id",
    "status",
    "output",
    "error",
    "raw",
    "model",
    "finish_reason",
    "usage",
    "attempts",
    "cached",
    "shared",
}


def test_success_row_serialises_compactly_in_utf8() -> None:
    row = success_row(
        "sku-1",
        {"name": "Crème brûlée", "tags": ["dessert"]},
        model="gemini-2.5-flash",
        finish_reason="stop",
        usage=usage_dict(prompt=10, completion=5, total=15),
        attempts=2,
        shared=True,
    )
    line = row.to_json_line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b", " not in line and b": " not in line
    assert "Crème brûlée".encode() in line  # not \u-escaped
    data = json.loads(line)
    assert set(data) == ROW_KEYS
    assert data["status"] == "success"
    assert data["output"] == {"name": "Crème brûlée", "tags": ["dessert"]}
    assert data["usage"]["total_tokens"] == 15
    assert data["attempts"] == 2 and data["shared"] is True and data["cached"] is False
    assert row.ok


def test_row_round_trips_and_from_dict_tolerates_missing_optional_keys() -> None:
    row = failure_row(
        7,
        RowStatus.TRUNCATED,
        error_type="truncated",
        message="the answer hit max_tokens",
        raw='{"a": ',
        model="m",
        finish_reason="length",
        usage=usage_dict(prompt=3, completion=100, total=103),
        attempts=1,
    )
    assert ResultRow.from_dict(json.loads(row.to_json_line())) == row
    minimal = ResultRow.from_dict({"id": "x", "status": "filtered"})
    assert minimal.status is RowStatus.FILTERED
    assert minimal.error is None and minimal.attempts == 0 and not minimal.cached and not minimal.ok


def test_from_dict_rejects_an_unknown_status() -> None:
    with pytest.raises(ValueError):
        ResultRow.from_dict({"id": 1, "status": "maybe"})


def test_failure_builders_fill_the_error() -> None:
    row = failure_row(3, RowStatus.ERROR, error_type="server_error", message="boom", http_status=503, attempts=4)
    assert row.to_dict()["error"] == {"type": "server_error", "message": "boom", "status": 503}
    assert row.output is None and not row.ok and row.attempts == 4

    refused = invalid_record_row(5, "record at position 5 has no field 'sku'")
    assert refused.status is RowStatus.ERROR and refused.attempts == 0
    assert refused.error == {
        "type": "invalid_record",
        "message": "record at position 5 has no field 'sku'",
        "status": None,
    }

    skipped = skipped_row("k", "the token budget of 1000 is spent", "budget_exhausted")
    assert skipped.status is RowStatus.ERROR and skipped.attempts == 0
    assert skipped.error is not None and skipped.error["type"] == "budget_exhausted"


def test_failure_row_refuses_success_status() -> None:
    with pytest.raises(ValueError, match="success_row"):
        failure_row(1, RowStatus.SUCCESS, error_type="x", message="y")


def test_usage_helpers() -> None:
    assert usage_dict() == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
    }
    a = usage_dict(prompt=1, completion=2, total=3, reasoning=4, cached=5)
    assert add_usage(a, a) == usage_dict(2, 4, 6, 8, 10)
    assert add_usage(None, {"total_tokens": 7, "prompt_tokens": None}) == usage_dict(total=7)


def test_run_counts_add_merge_and_failed() -> None:
    counts = RunCounts()
    counts.add(success_row(1, "a", model="m", finish_reason="stop", usage=usage_dict(1, 2, 3), attempts=1))
    counts.add(failure_row(2, RowStatus.INVALID_OUTPUT, error_type="invalid_output", message="no JSON", attempts=2))
    counts.add(skipped_row(3, "cancelled", "cancelled"))
    assert (counts.records, counts.requests, counts.success, counts.failed) == (3, 3, 1, 2)
    other = RunCounts()
    other.add_values("error", 5, usage_dict(total=10))
    counts.merge(other)
    data = counts.to_dict()
    assert data["records"] == 4 and data["requests"] == 8 and data["failed"] == 3
    assert data["counts"] == {"success": 1, "invalid_output": 1, "truncated": 0, "filtered": 0, "error": 2}
    assert data["usage"]["total_tokens"] == 13 and data["usage"]["prompt_tokens"] == 1
    json.dumps(data)  # JSON-ready
