"""When a records run stops sending: failures every other record would get too, and only those.

A rejected token, an exhausted quota or a model the server does not serve fails every
record, so the first one stops the run. Any other non-retryable error (a 400 that a
gateway gives every request, say for a wrong key) stops it once the first
``SAME_ERROR_LIMIT`` records, with no success yet, all failed with it. A 403 or 400 about
one request, a filtered or cut-off answer, a rate limit or an outage never stops a run.
"""

from __future__ import annotations

import threading

from airflow_provider_anyfast.core.retry import is_retryable
from airflow_provider_anyfast.exceptions import (
    AnyFastAuthError,
    AnyFastError,
    AnyFastModelUnavailableError,
    AnyFastOutputError,
    AnyFastQuotaExhaustedError,
    AnyFastRetryWaitTooLongError,
)


class BudgetSpent(AnyFastError):
    """The run's budget (tokens or cost) is spent: this record was not sent."""

    kind = "budget_exhausted"


def budget_spent(**limits: float | None) -> BudgetSpent:
    """The not-sent error of a record the run's budget has no room for, naming the limits set."""
    spent = ", ".join(f"{name}={value}" for name, value in limits.items() if value is not None)
    return BudgetSpent(f"not sent: the run's budget ({spent}) is spent")


class Aborted(AnyFastError):
    """An earlier failure (bad token, no quota) or a stop would fail this record too: not sent."""

    kind = "aborted"


#: Failures that every record would get: the first one stops the run.
EVERY_RECORD = (AnyFastAuthError, AnyFastQuotaExhaustedError, AnyFastModelUnavailableError)
#: The same non-retryable error on this many records in a row, before any success, stops the run.
SAME_ERROR_LIMIT = 5


class StopRule:
    """Thread-safe: worker threads report each record's failure or success."""

    def __init__(self, same_error_limit: int = SAME_ERROR_LIMIT) -> None:
        self.same_error_limit = same_error_limit
        self._lock = threading.Lock()
        self._any_success = False
        self._same: tuple[tuple[str, int | None, str | None], int] | None = None

    def success(self) -> None:
        self._any_success = True

    def stops_the_run(self, exc: BaseException) -> bool:
        """True when ``exc`` is a failure every record would get."""
        if isinstance(exc, EVERY_RECORD):
            return True
        if self._any_success or not isinstance(exc, AnyFastError) or is_retryable(exc):
            return False
        if isinstance(exc, AnyFastOutputError | AnyFastRetryWaitTooLongError) or exc.kind == Aborted.kind:
            return False
        key = (exc.kind, exc.status, exc.code)
        with self._lock:
            count = self._same[1] + 1 if self._same is not None and self._same[0] == key else 1
            self._same = (key, count)
        return count >= self.same_error_limit
