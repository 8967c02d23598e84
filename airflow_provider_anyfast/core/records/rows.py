"""Result rows: one per input record, whatever happened to it.

Every row has the same keys whatever its status, so the output reads as one table in any
JSON Lines tool. The builders below are the only way the engine makes rows, so a status
can never come with a half-filled error or a success with an error attached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from airflow_provider_anyfast.core.outcome import USAGE_KEYS, add_usage
from airflow_provider_anyfast.exceptions import AnyFastError, AnyFastOutputError


class RowStatus(StrEnum):
    """What became of one record; the string values are what rows and manifests hold."""

    SUCCESS = "success"
    INVALID_OUTPUT = "invalid_output"
    TRUNCATED = "truncated"
    FILTERED = "filtered"
    ERROR = "error"


def usage_dict(prompt: int = 0, completion: int = 0, total: int = 0, reasoning: int = 0, cached: int = 0) -> dict:
    """Token counts under the row's key names, so every producer spells them alike."""
    return dict(zip(USAGE_KEYS, (prompt, completion, total, reasoning, cached), strict=True))


@dataclass(frozen=True, slots=True)
class ResultRow:
    """The outcome of one record, as written to XCom or to a row file."""

    id: str | int
    status: RowStatus
    output: Any = None
    error: dict | None = None
    raw: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    usage: dict | None = None
    attempts: int = 0
    cached: bool = False
    shared: bool = False
    input: dict | None = None  # the record's fields named by keep_fields, when set

    @property
    def ok(self) -> bool:
        """True when the record got a usable answer."""
        return self.status is RowStatus.SUCCESS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with every key present (None when not applicable); ``input`` with keep_fields."""
        found = {
            "id": self.id,
            "status": self.status.value,
            "output": self.output,
            "error": self.error,
            "raw": self.raw,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": self.usage,
            "attempts": self.attempts,
            "cached": self.cached,
            "shared": self.shared,
        }
        if self.input is not None:
            found["input"] = self.input
        return found

    def to_json_line(self) -> bytes:
        """One compact UTF-8 JSON line, newline included, as row files hold it."""
        text = json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8") + b"\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResultRow:
        """Rebuild a row written by any version; only ``id`` and ``status`` are required."""
        return cls(
            id=d["id"],
            status=RowStatus(d["status"]),
            output=d.get("output"),
            error=d.get("error"),
            raw=d.get("raw"),
            model=d.get("model"),
            finish_reason=d.get("finish_reason"),
            usage=d.get("usage"),
            attempts=int(d.get("attempts") or 0),
            cached=bool(d.get("cached", False)),
            shared=bool(d.get("shared", False)),
            input=d.get("input"),
        )


def success_row(
    id: str | int,
    output: Any,
    *,
    model: str | None,
    finish_reason: str | None,
    usage: dict | None,
    attempts: int,
    cached: bool = False,
    shared: bool = False,
) -> ResultRow:
    """A record that got a usable answer."""
    return ResultRow(
        id=id,
        status=RowStatus.SUCCESS,
        output=output,
        model=model,
        finish_reason=finish_reason,
        usage=usage,
        attempts=attempts,
        cached=cached,
        shared=shared,
    )


def failure_row(
    id: str | int,
    status: RowStatus,
    *,
    error_type: str,
    message: str,
    http_status: int | None = None,
    raw: str | None = None,
    model: str | None = None,
    finish_reason: str | None = None,
    usage: dict | None = None,
    attempts: int = 0,
) -> ResultRow:
    """A record that did not get a usable answer; ``raw`` keeps what the model said, if anything."""
    if status is RowStatus.SUCCESS:
        raise ValueError("failure_row() needs a failure status; use success_row() for successes")
    return ResultRow(
        id=id,
        status=status,
        error={"type": error_type, "message": message, "status": http_status},
        raw=raw,
        model=model,
        finish_reason=finish_reason,
        usage=usage,
        attempts=attempts,
    )


def invalid_record_row(id: str | int, message: str) -> ResultRow:
    """A record refused before any request (not an object, no id, bad line in the input)."""
    return failure_row(id, RowStatus.ERROR, error_type="invalid_record", message=message)


def skipped_row(id: str | int, reason: str, error_type: str) -> ResultRow:
    """A record never sent because the run stopped first (budget spent, cancelled)."""
    return failure_row(id, RowStatus.ERROR, error_type=error_type, message=reason)


_STATUS_OF_OUTPUT_ERROR = {
    "truncated": RowStatus.TRUNCATED,
    "filtered": RowStatus.FILTERED,
    "prompt_blocked": RowStatus.FILTERED,
    "invalid_output": RowStatus.INVALID_OUTPUT,
}


def row_for_error(record_id: str | int, exc: BaseException, model: str | None) -> ResultRow:
    """The row of a record whose call failed, keeping what the failure cost."""
    if isinstance(exc, AnyFastOutputError):
        return failure_row(
            record_id, _STATUS_OF_OUTPUT_ERROR.get(exc.kind, RowStatus.INVALID_OUTPUT),
            error_type=exc.kind, message=exc.message, raw=exc.raw, model=model,
            finish_reason=exc.finish_reason, usage=exc.usage, attempts=exc.attempts,
        )  # fmt: skip
    if isinstance(exc, AnyFastError):
        return failure_row(
            record_id, RowStatus.ERROR, error_type=exc.kind, message=exc.message,
            http_status=exc.status, model=model, usage=exc.usage, attempts=exc.attempts,
        )  # fmt: skip
    return failure_row(
        record_id, RowStatus.ERROR, error_type="unexpected", message=f"{type(exc).__name__}: {exc}", model=model
    )


@dataclass(slots=True)
class RunCounts:
    """Running totals over rows, for progress logs and manifests."""

    records: int = 0
    requests: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in RowStatus})
    usage: dict[str, int] = field(default_factory=usage_dict)

    @property
    def success(self) -> int:
        """Records that got a usable answer."""
        return self.by_status.get(RowStatus.SUCCESS.value, 0)

    @property
    def failed(self) -> int:
        """Records with any status other than success."""
        return self.records - self.success

    def add(self, row: ResultRow) -> None:
        """Count one row."""
        self.add_values(row.status, row.attempts, row.usage)

    def add_values(self, status: str, attempts: int, usage: Mapping[str, Any] | None) -> None:
        """Count a row known only by its summary (the store keeps summaries, not rows)."""
        key = str(status)
        self.records += 1
        self.requests += attempts
        self.by_status[key] = self.by_status.get(key, 0) + 1
        self.usage = add_usage(self.usage, usage)

    def merge(self, other: RunCounts) -> None:
        """Add another set of totals to this one (carried rows plus this run's rows)."""
        self.records += other.records
        self.requests += other.requests
        for key, n in other.by_status.items():
            self.by_status[key] = self.by_status.get(key, 0) + n
        self.usage = add_usage(self.usage, other.usage)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready totals."""
        return {
            "records": self.records,
            "requests": self.requests,
            "failed": self.failed,
            "counts": dict(self.by_status),
            "usage": dict(self.usage),
        }
