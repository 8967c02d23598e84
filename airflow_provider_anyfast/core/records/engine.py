"""The record engine: work items in, one result row per record out, many in flight.

One thread (the caller's) reads the work, submits requests and writes rows: the sink
is never touched by two threads. Worker threads only wait on limits and on the
network, then hand a finished row back through a queue. A record's failure becomes
its row; it never stops the others. Only failures that no other record could get past
(a rejected token, an exhausted quota) stop new requests, and the records not sent
then get rows that say why.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.completion import run_json_request
from airflow_provider_anyfast.core.jsonmode import OutputSchema
from airflow_provider_anyfast.core.limits.account import AccountLimits, acquire
from airflow_provider_anyfast.core.limits.budget import LimitsUnavailableError
from airflow_provider_anyfast.core.records.cost import billed
from airflow_provider_anyfast.core.records.limits import AdaptiveConcurrency, RateBucket, TokenBudget
from airflow_provider_anyfast.core.records.meter import RunMeter
from airflow_provider_anyfast.core.records.progress import Progress
from airflow_provider_anyfast.core.records.reuse import Reuse
from airflow_provider_anyfast.core.records.rows import (
    ResultRow,
    RowStatus,
    RunCounts,
    failure_row,
    row_for_error,
    skipped_row,
    success_row,
)
from airflow_provider_anyfast.core.records.runlog import RetryTally
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.sink import RowSink
from airflow_provider_anyfast.core.records.stopping import Aborted, BudgetSpent, StopRule, budget_spent
from airflow_provider_anyfast.core.records.workers import WorkerPool
from airflow_provider_anyfast.core.records.writer import RowWriter
from airflow_provider_anyfast.core.retry import CallObserver, suggested_wait
from airflow_provider_anyfast.exceptions import AnyFastError, AnyFastRateLimitError

log = logging.getLogger("airflow_provider_anyfast.records")
#: The longest the engine waits for an answer before it looks at a stop, a due flush or progress.
_TICK = 0.2


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One record, ready to send: its id, the request body, and a token estimate for limits.

    ``key_body``, when set, stands in for ``body`` in the request key (attachments by content hash).
    """

    record_id: str | int
    body: dict[str, Any]
    estimate: int
    key_body: dict[str, Any] | None = None
    kept: dict[str, Any] | None = None  # the record's keep_fields, copied into its row


class RecordEngine:
    """Runs work items through the client within concurrency, rate and budget limits."""

    def __init__(
        self,
        client: AnyFastClient,
        schema: OutputSchema | None,
        sink: RowSink,
        settings: RunSettings,
        *,
        total: int | None = None,
        cancel: threading.Event | None = None,
        reuse: Reuse | None = None,
        meter: RunMeter | None = None,
    ) -> None:
        self.client = client
        self.schema = schema
        self.sink = sink
        self.settings = settings
        self.cancel = cancel or threading.Event()
        self.concurrency = AdaptiveConcurrency(settings.max_concurrency)
        self.rpm = RateBucket(settings.requests_per_minute) if settings.requests_per_minute else None
        self.tpm = RateBucket(settings.tokens_per_minute) if settings.tokens_per_minute else None
        account = settings.account or AccountLimits()
        self.pace = account.requests_bucket()
        self.account_tpm = account.tokens_bucket()
        self.budget = account.budget("tokens", settings.max_total_tokens) or TokenBudget(settings.max_total_tokens)
        self.cost = account.budget("cost", settings.max_cost) or TokenBudget(settings.max_cost)
        self._budgeted = bool(settings.max_total_tokens or settings.max_cost)
        self._estimated = threading.Event()  # the run said its budget counts an estimate (no usage sent)
        self.reuse = reuse or Reuse(dedup=False)
        self.writer = RowWriter(sink, self.reuse, settings.flush_interval)
        self.counts = self.writer.counts
        self.meter = meter or RunMeter()
        self.meter.counts = self.counts  # reports read the engine's own totals
        self.retries = RetryTally()
        self.progress = Progress(total, settings.progress_interval, log, price=settings.price)
        self.progress.notes = self.retries.take
        self.stopped: AnyFastError | None = None
        self.stop_cause: AnyFastError | None = None  # the failure every record would get, when that stopped the run
        self.stop_rule = StopRule()
        self._done: queue.Queue[tuple[str, ResultRow]] = queue.Queue()
        self._in_flight = 0
        self._attempt = threading.local()  # per worker thread: when its current request was sent

    def run(self, items: Iterable[WorkItem | ResultRow]) -> RunCounts:
        """Process every item; rows already decided (refused records) go straight to the sink.

        Rows (and cache entries) reach storage at least every ``flush_interval`` seconds. On a stop
        (``cancel``) nothing more is sent, answers already received are written, and requests still
        in flight get ``stop_grace`` seconds to answer before they are given up on.
        """
        self.writer.restart_clock()
        write = self.writer.write
        with self._workers() as pool:
            for item in items:
                if self.cancel.is_set():
                    break
                if isinstance(item, WorkItem) and item.kept is not None:
                    self.writer.keep(item.record_id, item.kept)
                if isinstance(item, ResultRow):
                    write(item)
                elif self.stopped is not None:
                    write(skipped_row(item.record_id, self.stopped.message, self.stopped.kind))
                else:
                    key, ready, send = self.reuse.before_send(item.record_id, item.key_body or item.body)
                    if ready is not None:
                        write(ready)
                    elif send:
                        while self._in_flight >= self.concurrency.limit and not self.cancel.is_set():
                            self._collect(block=True)
                        if self.cancel.is_set():
                            break  # stopped while waiting for a slot: send nothing more
                        self._in_flight += 1
                        pool.submit(self._call, item, key)
                self._collect(block=False)
            while self._in_flight and not self.cancel.is_set():
                self._collect(block=True)
            if self.cancel.is_set():
                self._give_up()
        self.progress.log_now(self.counts, self.concurrency.limit)
        self.meter.flush(final=True)
        return self.counts

    @contextlib.contextmanager
    def _workers(self) -> Iterator[WorkerPool]:
        """The worker threads, and what becomes of their work when the loop fails or is stopped.

        On a failure (storage down, input unreadable, task killed or timed out) no request is sent
        any more, rows already handed back (paid for) are still written if the sink takes them, and
        requests in flight are given up on: a read that never ends cannot hold the stop.
        """
        pool = WorkerPool(self.settings.max_concurrency)
        try:
            yield pool
        except BaseException:
            self.cancel.set()
            pool.abandon()
            with contextlib.suppress(Exception):  # a sink that fails too cannot keep them
                self._give_up()
            raise
        if self._in_flight:
            pool.abandon()
        else:
            pool.shutdown()

    def _give_up(self) -> None:
        """A stop: wait at most ``stop_grace`` for answers in flight, then leave the rest."""
        deadline = time.monotonic() + self.settings.stop_grace
        while self._in_flight and (left := deadline - time.monotonic()) > 0:
            self._collect(block=True, wait=left)
        if self._in_flight:
            log.warning(
                "AnyFast run stopped: gave up on %d request(s) still in flight; their records have no row and "
                "are sent again by the next run", self._in_flight,
            )  # fmt: skip

    def _collect(self, *, block: bool, wait: float | None = None) -> None:
        """Write finished rows; when blocking, wait a short tick at most (a stop or a flush may be due)."""
        timeout = min(wait if wait is not None else _TICK, self._tick()) if block else None
        while self._in_flight:
            try:
                key, row = self._done.get(block=block, timeout=timeout)
            except queue.Empty:
                break
            self._in_flight -= 1
            self.writer.write(row)
            for follower in self.reuse.after(key, row):
                self.writer.write(follower)
            block = False
        self._report_progress()
        self.writer.maybe_flush()

    def _report_progress(self) -> None:
        """Once per progress interval: the progress line, and the metrics of the interval."""
        if self.progress.maybe_log(self.counts, self.concurrency.limit):
            self.meter.flush()

    def _tick(self) -> float:
        return max(0.01, min(_TICK, self.progress.seconds_to_next(), self.writer.seconds_to_flush()))

    def _call(self, item: WorkItem, key: str = "") -> None:
        """Worker thread: one record from limits to row. Always hands back exactly one row."""
        row: ResultRow | None = None
        try:
            row = self._row_for(item)
        finally:
            if row is None:  # only a bug in the accounting below can leave us here
                row = failure_row(item.record_id, RowStatus.ERROR, error_type="unexpected", message="worker failed")
            self._done.put((key, row))

    def _row_for(self, item: WorkItem) -> ResultRow:
        self._attempt.started = None
        model = item.body.get("model")
        price = self.settings.price
        cost_estimate = price.worst_case(item.estimate) if price is not None else 0.0
        reserved = False
        try:
            if not self.budget.try_reserve(item.estimate):
                raise self._budget_spent()
            if not self.cost.try_reserve(cost_estimate):
                self.budget.settle(item.estimate, 0)
                raise self._budget_spent()
            reserved = True
            observer = CallObserver(before_attempt=lambda: self._before_attempt(item), on_retry=self._on_retry,
                                    cancel=self.cancel, log_retries=False)  # fmt: skip
            result = run_json_request(
                self.client,
                item.body,
                self.schema,
                max_output_retries=self.settings.max_output_retries,
                observer=observer,
            )
            self.concurrency.on_success()
            self.stop_rule.success()
            self.pace.on_success()
            row = success_row(
                item.record_id, result.json_value, model=result.completion.model or model,
                finish_reason=result.completion.finish_reason, usage=result.usage, attempts=result.attempts,
            )  # fmt: skip
        except Exception as exc:  # one record's failure is its row, whatever it was
            row = row_for_error(item.record_id, exc, model)
            stops = isinstance(exc, BudgetSpent | LimitsUnavailableError) or self.stop_rule.stops_the_run(exc)
            if stops and self.stopped is None and isinstance(exc, AnyFastError):
                self._stop(exc)
        spent = int((row.usage or {}).get("total_tokens") or 0)
        if reserved:
            started = getattr(self._attempt, "started", None)  # the last attempt's, after any limiter wait
            if started is not None:
                self.meter.on_record(time.monotonic() - started, (row.error or {}).get("status"))
            tokens, cost, estimated = billed(row.usage, row.status is not RowStatus.ERROR, item.estimate,
                                             cost_estimate, price)  # fmt: skip
            self.budget.settle(item.estimate, tokens)
            self.cost.settle(cost_estimate, cost)
            if estimated and self._budgeted and not self._estimated.is_set():
                self._estimated.set()  # said once per run (a rare race may say it twice)
                log.warning("AnyFast sent no usage for a request: the budget counts its estimate instead")
        for bucket in (self.tpm, self.account_tpm):
            if bucket is not None:
                bucket.adjust(spent - item.estimate * row.attempts)
        return row

    def _before_attempt(self, item: WorkItem) -> None:
        """Every attempt, retries included, is a new request: limits and budget apply to each."""
        if self.stopped is not None:
            raise type(self.stopped)(self.stopped.message)
        if self.budget.exhausted or self.cost.exhausted:
            raise self._budget_spent()
        if self.rpm is not None:
            self.rpm.acquire(1, self.cancel)
        if self.tpm is not None:
            self.tpm.acquire(item.estimate, self.cancel)
        acquire(self.pace, 1, self.cancel)
        if self.account_tpm is not None:
            acquire(self.account_tpm, item.estimate, self.cancel)
        if self.cancel.is_set():  # a stop also ends the waits above: they must not end in a request
            raise Aborted("not sent: the task is being stopped")
        self._attempt.started = time.monotonic()  # request latency starts here, not at the limiter

    def _on_retry(self, exc: AnyFastError, wait: float) -> None:
        self.meter.on_retry(rate_limited=exc.status == 429)
        self.retries.add(exc, wait)
        if isinstance(exc, AnyFastRateLimitError):
            self.concurrency.on_rate_limited()
            self.pace.on_rate_limited(suggested_wait(exc))  # the wait the retry policy takes from the answer

    def _budget_spent(self) -> BudgetSpent:
        return budget_spent(max_total_tokens=self.settings.max_total_tokens, max_cost=self.settings.max_cost)

    def _stop(self, exc: AnyFastError) -> None:
        """No new requests after a failure every other record would hit too, or once the budget is spent."""
        if isinstance(exc, BudgetSpent):
            self.stopped = exc
        else:
            self.stop_cause = exc
            self.stopped = exc if isinstance(exc, LimitsUnavailableError) else Aborted(
                f"not sent: an earlier request failed with {exc.kind}: {exc.message}")  # fmt: skip
        log.error("AnyFast run stops sending new requests: %s", self.stopped.message)
