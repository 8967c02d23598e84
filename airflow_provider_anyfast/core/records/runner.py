"""A whole records run: plan, resume, process, finalize, and judge the error rate.

The operator hands this module a job and a sink and gets a summary back; everything
between (in what order records are checked, sent, written and counted) is here, with
no Airflow in sight, so the same run can be driven from a test or a script.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pendulum

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.jsonmode import OutputSchema
from airflow_provider_anyfast.core.records.cache import ResultCache
from airflow_provider_anyfast.core.records.engine import EngineSettings, RecordEngine
from airflow_provider_anyfast.core.records.plan import RecordsJob, plan, work
from airflow_provider_anyfast.core.records.reuse import Reuse
from airflow_provider_anyfast.core.records.rows import RowStatus
from airflow_provider_anyfast.core.records.source import SourceItem
from airflow_provider_anyfast.core.records.store import RowSink, RowStorageError, RowStore

log = logging.getLogger("airflow_provider_anyfast.records")


class RecordsRefusedError(ValueError):
    """Too many records cannot be sent at all: refused before any request is paid for."""


class ErrorRateExceededError(RuntimeError):
    """Every record was processed and written, but too many ended without a valid answer."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass(frozen=True)
class RunSpec:
    """Everything a run needs besides the records themselves."""

    job: RecordsJob
    schema: OutputSchema | None
    engine: EngineSettings
    max_error_rate: float = 0.0
    location: str = "XCom"
    cache: ResultCache | None = None
    dedup: bool = True


def run_records(
    client: AnyFastClient,
    spec: RunSpec,
    source: Callable[[], Iterable[SourceItem]],
    sink: RowSink,
    *,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run every record of ``source()`` (read twice: a checking pass, then a working pass)."""
    started = pendulum.now("UTC")
    keys: set[str] | None = set() if spec.cache is not None else None
    checked = plan(spec.job, source(), keys)
    if checked.total and checked.refused / checked.total > spec.max_error_rate:
        raise RecordsRefusedError(
            f"{checked.refused} of {checked.total} records cannot be sent, more than max_error_rate="
            f"{spec.max_error_rate} allows, so nothing was sent. First problems: " + "; ".join(checked.examples)
        )
    done: set[Any] = set()
    if isinstance(sink, RowStore):
        state = sink.open(checked.fingerprint, details=checked.details)
        for warning in state.warnings:
            log.warning("%s", warning)
        done = state.done_ids
        if state.is_resume:
            log.info(
                "Resuming in %s: %d record(s) already have a success row and will not be requested again",
                spec.location, len(done),
            )  # fmt: skip
    reuse = Reuse(spec.cache, spec.dedup)
    if spec.cache is not None and keys:
        found = spec.cache.load(keys)
        log.info("Cache %s answers %d of %d distinct requests", spec.cache.root, found, len(keys))
    engine = RecordEngine(
        client, spec.schema, sink, spec.engine, total=checked.total - len(done), cancel=cancel, reuse=reuse
    )
    try:
        engine.run(work(spec.job, source(), done))
    except BaseException as exc:
        # keep every answer already paid for that can still be written; never hide the real error
        for flush in (sink.flush, reuse.flush):
            with contextlib.suppress(Exception):
                flush()
        if isinstance(exc, RowStorageError):
            raise RowStorageError(
                f"Writing result rows to {spec.location} failed, so the run stopped sending requests: {exc}. "
                "Rows written before the failure are kept: once the storage works again, rerun the task (an "
                "Airflow retry does this) and only the records without a success row there are sent again."
            ) from exc
        raise
    reuse.flush()
    if engine.cancel.is_set():
        sink.flush()
        raise RuntimeError(f"the run was stopped; rows written so far are in {spec.location}")
    summary = sink.close(
        {
            "model": spec.job.model,
            "started_at": started.isoformat(),
            "ended_at": pendulum.now("UTC").isoformat(),
            "input_records": checked.total,
            "refused_records": checked.refused,
            "output": spec.location,
            **reuse.stats(),
        }
    )
    price = spec.engine.price
    if price is not None:
        summary["estimated_cost"] = round(price.cost(summary.get("usage")), 6)
        log.info("Estimated cost of the rows in %s: %.4f", spec.location, summary["estimated_cost"])
    _judge(summary, checked.total, spec)
    return summary


def _judge(summary: dict[str, Any], total: int, spec: RunSpec) -> None:
    """Fail the run, after every row is written, when too many records failed."""
    counts = summary.get("counts") or summary.get("by_status") or {}
    failed = sum(n for status, n in counts.items() if status != RowStatus.SUCCESS.value)
    if total and failed / total > spec.max_error_rate:
        by_status = ", ".join(f"{s}={n}" for s, n in counts.items() if n and s != RowStatus.SUCCESS.value)
        raise ErrorRateExceededError(
            f"{failed} of {total} records ({100.0 * failed / total:.1f}%) ended without a valid answer "
            f"({by_status}), more than max_error_rate={spec.max_error_rate}. Every record was processed; "
            f"the error rows are in {spec.location} (rows whose status is not 'success').",
            summary,
        )
