"""A whole records run: check, resume, process, finalize, and judge the error rate.

The operator hands this module a job and a sink and gets a summary back; everything
between (in what order records are checked, sent, written and counted) is here, with
no Airflow in sight, so the same run can be driven from a test or a script.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pendulum

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.jsonmode import OutputSchema
from airflow_provider_anyfast.core.records.cache import ResultCache
from airflow_provider_anyfast.core.records.engine import RecordEngine
from airflow_provider_anyfast.core.records.lease import LeaseLostError
from airflow_provider_anyfast.core.records.meter import Report, RunMeter
from airflow_provider_anyfast.core.records.plan import RecordCheck, RecordsJob, check_records, work
from airflow_provider_anyfast.core.records.preflight import check_model_served
from airflow_provider_anyfast.core.records.reuse import Reuse
from airflow_provider_anyfast.core.records.rows import RowStatus
from airflow_provider_anyfast.core.records.runlog import start_line
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.sink import RowSink
from airflow_provider_anyfast.core.records.source import EmptyInputError, SourceItem
from airflow_provider_anyfast.core.records.store import RowStorageError
from airflow_provider_anyfast.exceptions import AnyFastError

log = logging.getLogger("airflow_provider_anyfast.records")


class RecordsRefusedError(ValueError):
    """Too many records cannot be sent at all: refused before any request is paid for."""


class RunStoppedError(RuntimeError):
    """The task was stopped (on_kill, timeout, SIGTERM) after writing every answer it had received."""


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
    settings: RunSettings = field(default_factory=RunSettings)
    location: str = "XCom"
    cache: ResultCache | None = None
    report: Report | None = None  # gets the run's metrics once per progress interval and at the end
    input_uri: str | None = None  # storage input: it must hold at least one record


def run_records(
    client: AnyFastClient,
    spec: RunSpec,
    source: Callable[[], Iterable[SourceItem]],
    sink: RowSink,
    *,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run every record of ``source()`` (read twice: a checking pass, then a working pass).

    Setting ``cancel`` (``on_kill``) stops the run promptly: nothing more is sent, every answer
    received is written, and ``RunStoppedError`` says where the rows are.
    """
    if not isinstance(spec.settings, RunSettings):
        raise TypeError(f"spec.settings must be a RunSettings, not {type(spec.settings).__name__}")
    spec.settings.check(for_run=True)  # a run started from a test or a script gets the operator's checks
    started = pendulum.now("UTC")
    cancel = cancel if cancel is not None else threading.Event()
    keys: set[str] | None = set() if spec.cache is not None else None
    checked = check_records(spec.job, source(), keys)
    if checked.total == 0 and spec.input_uri is not None:
        raise EmptyInputError(
            f"records {spec.input_uri} holds no record (its JSON Lines files are empty): nothing to do. Check the "
            "path, or the upstream task that writes it."
        )
    if checked.total and checked.refused / checked.total > spec.settings.max_error_rate:
        raise RecordsRefusedError(
            f"{checked.refused} of {checked.total} records cannot be sent, more than max_error_rate="
            f"{spec.settings.max_error_rate} allows, so nothing was sent. First problems: "
            + "; ".join(checked.examples)
        )
    if spec.cache is not None:
        spec.cache.check_writable()  # before the first paid request
    lost: list[str] = []

    def on_lost(message: str) -> None:
        lost.append(message)
        cancel.set()

    state = sink.open(checked.fingerprint, details=checked.details, on_lost=on_lost)
    for warning in state.warnings:
        log.warning("%s", warning)
    done: set[Any] = state.done_ids
    if state.is_resume:
        log.info(
            "Resuming in %s: %d record(s) already have a success row and will not be requested again",
            spec.location, len(done),
        )  # fmt: skip
    try:
        return _run(client, spec, source, sink, checked, keys or set(), done, cancel, lost, started)
    finally:
        sink.release()


def _run(
    client: AnyFastClient,
    spec: RunSpec,
    source: Callable[[], Iterable[SourceItem]],
    sink: RowSink,
    checked: RecordCheck,
    keys: set[str],
    done: set[Any],
    cancel: threading.Event,
    lost: list[str],
    started: pendulum.DateTime,
) -> dict[str, Any]:
    reuse = Reuse(spec.cache, spec.settings.dedup, accept=_accepts(spec.schema))
    if spec.cache is not None and keys:
        found = spec.cache.load(keys)
        log.info("Cache %s answers %d of %d distinct requests", spec.cache.root, found, len(keys))
    log.info("%s", _start_line(spec, checked.total, checked.refused))
    if checked.total - checked.refused > len(done):
        check_model_served(client, spec.job.model)  # free: a typo fails here, before any paid request
    meter = RunMeter(spec.job.model, spec.settings.price, spec.report)
    engine = RecordEngine(
        client, spec.schema, sink, spec.settings, total=checked.total - len(done), cancel=cancel, reuse=reuse,
        meter=meter,
    )  # fmt: skip
    try:
        engine.run(work(spec.job, source(), done))
    except BaseException as exc:
        meter.flush(final=True)  # what was paid for before the failure still shows in the metrics
        # keep every answer already paid for that can still be written (rows first); never hide the real error
        with contextlib.suppress(Exception):
            sink.flush()
        reuse.close()
        if isinstance(exc, RowStorageError):
            raise RowStorageError(
                f"Writing result rows to {spec.location} failed, so the run stopped sending requests: {exc}. "
                "Rows written before the failure are kept: once the storage works again, rerun the task (an "
                "Airflow retry does this) and only the records without a success row there are sent again."
            ) from exc
        raise
    if cancel.is_set():
        sink.flush()
        reuse.close()
        if lost:
            raise LeaseLostError(lost[0])
        if sink.durable:
            kept = f"are kept in {spec.location}"
        elif spec.cache is not None:
            kept = f"are kept in the cache {spec.cache.root}"
        else:
            kept = "are lost (XCom mode without a cache: set cache_path or output_path to keep them)"
        raise RunStoppedError(
            f"The run was stopped (on_kill, a timeout or SIGTERM): no request was sent after the stop, and the "
            f"{engine.counts.records} row(s) of this run {kept}. A rerun sends only the records still without an "
            "answer."
        )
    if spec.cache is not None and spec.cache.rejected:
        log.warning(
            "Cache %s: %d cached answer(s) no longer pass the current output_schema and were requested again",
            spec.cache.root, spec.cache.rejected,
        )  # fmt: skip
    summary = sink.finalize(
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
    reuse.close()  # after the rows are safe; a cache failure here only warns
    price = spec.settings.price
    if price is not None:
        summary["estimated_cost"] = round(price.cost(summary.get("usage")), 6)
        log.info("Estimated cost of the rows in %s: %.4f", spec.location, summary["estimated_cost"])
    if engine.stop_cause is not None:
        raise stopped_error(engine.stop_cause, summary, spec.location)
    _judge(summary, checked.total, spec)
    return summary


def _accepts(schema: OutputSchema | None) -> Callable[[Any], bool] | None:
    """Whether a cached answer still passes the current schema (validators included)."""
    if schema is None:
        return None

    def accept(output: Any) -> bool:
        try:
            schema.validate(output)
        except ValueError:
            return False
        return True

    return accept


def stopped_error(cause: AnyFastError, summary: dict[str, Any], location: str) -> AnyFastError:
    """The run's error when it stopped for a failure every record would get: that failure, with the rows' summary."""
    unsent = int((summary.get("counts") or {}).get(RowStatus.ERROR.value, 0))
    error = type(cause)(
        f"The run stopped sending: {cause.message}. Every record would fail the same way, so the records not "
        f"yet sent were not sent ({unsent} error row(s) in {location}); fix the cause, then rerun. "
        + ("An Airflow retry sends only those." if getattr(cause, "retry_helps", False) else "An Airflow retry "
           "cannot help."),
        status=cause.status, code=cause.code, type=cause.type, request_id=cause.request_id,
    )  # fmt: skip
    error.source, error.cost = cause.source, cause.cost
    error.summary = summary  # type: ignore[attr-defined]
    return error


def _start_line(spec: RunSpec, total: int, refused: int) -> str:
    settings = spec.settings
    limits = {
        "max_concurrency": settings.max_concurrency, "requests_per_minute": settings.requests_per_minute,
        "tokens_per_minute": settings.tokens_per_minute, "max_total_tokens": settings.max_total_tokens,
        "max_cost": settings.max_cost, "max_error_rate": settings.max_error_rate,
    }  # fmt: skip
    cache = f"{spec.cache.root}" if spec.cache is not None else "off"
    return start_line(
        records=total, refused=refused, source=spec.input_uri or "the task's record list", model=spec.job.model,
        output=spec.location, limits=limits, cache=f"{cache}, dedup {'on' if settings.dedup else 'off'}",
    )  # fmt: skip


def _judge(summary: dict[str, Any], total: int, spec: RunSpec) -> None:
    """Fail the run, after every row is written, when too many records failed."""
    counts = summary.get("counts") or {}
    failed = sum(n for status, n in counts.items() if status != RowStatus.SUCCESS.value)
    if total and failed / total > spec.settings.max_error_rate:
        by_status = ", ".join(f"{s}={n}" for s, n in counts.items() if n and s != RowStatus.SUCCESS.value)
        raise ErrorRateExceededError(
            f"{failed} of {total} records ({100.0 * failed / total:.1f}%) ended without a valid answer "
            f"({by_status}), more than max_error_rate={spec.settings.max_error_rate}. Every record was processed; "
            f"the error rows are in {spec.location} (rows whose status is not 'success').",
            summary,
        )
