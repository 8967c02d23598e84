"""Which failures are retried, and how long to wait before the next try.

The policy follows the contract: rate limits, server errors, dropped connections and
read timeouts are retried; a bad request, a bad token or an exhausted quota never is,
because sending the same request again cannot succeed. The server's own hint
(``retry-after-ms``, ``Retry-After`` in seconds or as an HTTP date, Gemini's
``retryDelay``) wins over our backoff, up to ``max_retry_wait``: past that we fail at
once rather than block a worker for minutes. tenacity runs the loop.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from airflow_provider_anyfast.exceptions import (
    AnyFastConnectionError,
    AnyFastError,
    AnyFastRateLimitError,
    AnyFastRetryWaitTooLongError,
    AnyFastServerError,
)

log = logging.getLogger("airflow_provider_anyfast.retry")
T = TypeVar("T")

RETRYABLE = (AnyFastRateLimitError, AnyFastServerError, AnyFastConnectionError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry, and the bounds on each wait (seconds)."""

    max_retries: int = 5
    max_retry_wait: float = 60.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.max_retry_wait <= 0 or self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("max_retry_wait must be > 0 and backoff bounds >= 0")


@dataclass(slots=True)
class CallHooks:
    """Callbacks the record engine hangs on each attempt (rate limiter, adaptive concurrency)."""

    before_attempt: Callable[[], None] | None = None
    on_retry: Callable[[AnyFastError, float], None] | None = None
    cancel: threading.Event | None = None
    log_retries: bool = True  # a records run tallies them in its progress line instead


def is_retryable(exc: BaseException) -> bool:
    """True for failures that another try may fix."""
    return isinstance(exc, RETRYABLE)


def retry_after_from_headers(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, then ``Retry-After``."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _HintedWait(tenacity.wait.wait_base):
    """The server's hint when there is one (refused past the cap), else jittered backoff."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.backoff = tenacity.wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hint = exc.retry_after if isinstance(exc, AnyFastError) else None
        if hint is None:
            return float(self.backoff(retry_state))
        if retry_state.attempt_number > self.policy.max_retries:
            return 0.0  # no retry follows (tenacity asks for the wait before it checks stop): keep the real error
        if hint > self.policy.max_retry_wait:
            too_long = AnyFastRetryWaitTooLongError(
                f"AnyFast asked to wait {hint:.1f}s before retrying, more than max_retry_wait="
                f"{self.policy.max_retry_wait:.0f}s; failing now instead of blocking. Raise the "
                "connection's 'max_retry_wait' extra or lower the request rate.",
                status=getattr(exc, "status", None),
                code=getattr(exc, "code", None),
                retry_after=hint,
            )
            too_long.attempts = retry_state.attempt_number
            raise too_long from exc
        return hint


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, hooks: CallHooks | None = None) -> tuple[T, int]:
    """Run ``fn`` under the policy; return its result and the number of attempts.

    A raised error carries ``attempts`` too: every try may have been billed.
    """
    hooks = hooks or CallHooks()
    cancel = hooks.cancel

    def before(state: tenacity.RetryCallState) -> None:
        if cancel is not None and cancel.is_set() and state.attempt_number > 1:
            raise AnyFastConnectionError("cancelled before retry: the task is being stopped")
        if hooks.before_attempt is not None:
            hooks.before_attempt()

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.upcoming_sleep
        assert isinstance(exc, AnyFastError)
        log.log(  # a records run tallies retries in its progress line: there they are only DEBUG
            logging.WARNING if hooks.log_retries else logging.DEBUG,
            "AnyFast call failed (%s, status=%s); attempt %d of %d, retrying in %.2fs",
            type(exc).__name__,
            exc.status,
            state.attempt_number,
            policy.max_retries + 1,
            wait,
        )
        if hooks.on_retry is not None:
            hooks.on_retry(exc, wait)

    def sleep(seconds: float) -> None:
        if cancel is None:
            time.sleep(seconds)
        else:
            cancel.wait(seconds)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_retryable),
        stop=tenacity.stop_after_attempt(policy.max_retries + 1),
        wait=_HintedWait(policy),
        before=before,
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return fn()

    try:
        result = retrying(counted)
    except AnyFastError as exc:
        exc.attempts = max(exc.attempts, attempts)
        raise
    return result, attempts
