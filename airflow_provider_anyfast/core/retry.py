"""Which failures are retried, and how long to wait before the next try.

The policy follows the contract: rate limits, server errors, dropped connections and
read timeouts are retried; a bad request, a bad token or an exhausted quota never is,
because sending the same request again cannot succeed. The server's own hint
(``retry-after-ms``, ``Retry-After`` in seconds or as an HTTP date,
``llm_provider-retry-after``, Gemini's ``retryDelay``) wins over our backoff, never below
a floor (``Retry-After: 0`` must not become a hot loop) and up to ``max_retry_wait``: past
that we fail at once rather than block a worker for minutes.

Server failures get ``max_retries`` retries; rate limits get a time budget instead
(``rate_limit_budget``, two minutes by default), because Gemini's quotas are per minute
and retries that all land inside the same minute fail together. Each record waits on its
own worker thread, so one record's wait holds no other back. tenacity runs the loop.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
#: Hints shorter than this (seconds) are ignored in favour of backoff: ``Retry-After: 0`` is not a plan.
MIN_HINT = 0.01


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry, and the bounds on each wait (seconds).

    ``max_retries`` bounds retries of server failures and dropped connections (0: never
    retry anything); a rate-limited request is retried until its waits would pass
    ``rate_limit_budget``. Without a usable hint, waits back off from ``backoff_initial``.
    ``sleep`` replaces ``time.sleep`` (tests: count the waits instead of sleeping them).
    """

    max_retries: int = 5
    max_retry_wait: float = 60.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    rate_limit_budget: float = 120.0
    sleep: Callable[[float], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.max_retry_wait <= 0 or self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("max_retry_wait must be > 0 and backoff bounds >= 0")
        if self.rate_limit_budget < 0:
            raise ValueError("rate_limit_budget must be >= 0 seconds")


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


def suggested_wait(exc: BaseException) -> float | None:
    """How long the server asked us to wait before trying again; None without a usable hint.

    The one place a hint becomes a wait, for the retry loop and for anything pausing a
    whole fleet on a rate limit. A hint under ``MIN_HINT`` (``Retry-After: 0``) is no hint:
    honoured, it would be a hot loop; the caller backs off instead.
    """
    hint = getattr(exc, "retry_after", None)
    if not isinstance(exc, AnyFastError) or hint is None or hint < MIN_HINT:
        return None
    return float(hint)


def retry_after_from_headers(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, then ``Retry-After``, then LiteLLM's."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after") or headers.get("llm_provider-retry-after")
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
    """The server's hint when there is one, else jittered backoff; never below the floor."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.backoff = tenacity.wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hint = suggested_wait(exc) if exc is not None else None
        if hint is not None:
            return hint
        return max(float(self.backoff(retry_state)), self.policy.backoff_initial / 2)  # the floor: never 0


class _Stop(tenacity.stop.stop_base):
    """Server failures: after ``max_retries`` retries. Rate limits: once the waits would pass the budget."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if self.policy.max_retries == 0:
            return True
        if isinstance(exc, AnyFastRateLimitError):
            wait = retry_state.upcoming_sleep or 0.0
            if wait > self.policy.max_retry_wait:
                return False  # not a stop: the wait is refused, as retry_wait_too_long, before any sleep
            return retry_state.idle_for + wait > self.policy.rate_limit_budget
        self.failures += 1
        return self.failures > self.policy.max_retries


def _too_long(policy: RetryPolicy, exc: AnyFastError, wait: float, attempts: int) -> AnyFastRetryWaitTooLongError:
    too_long = AnyFastRetryWaitTooLongError(
        f"{exc.source} asked to wait {wait:.1f}s before retrying, more than max_retry_wait="
        f"{policy.max_retry_wait:.0f}s; failing now instead of blocking. Raise the "
        "connection's 'max_retry_wait' extra or lower the request rate.",
        status=exc.status,
        code=exc.code,
        retry_after=wait,
    )
    too_long.attempts = attempts
    too_long.source = exc.source
    return too_long


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
        if wait > policy.max_retry_wait:
            raise _too_long(policy, exc, wait, state.attempt_number) from exc
        log.log(  # a records run tallies retries in its progress line: there they are only DEBUG
            logging.WARNING if hooks.log_retries else logging.DEBUG,
            "%s call failed (%s, status=%s); attempt %d of %d, retrying in %.2fs (rate limits are retried for "
            "up to %gs of waiting)",
            exc.source,
            type(exc).__name__,
            exc.status,
            state.attempt_number,
            policy.max_retries + 1,
            wait,
            policy.rate_limit_budget,
        )
        if hooks.on_retry is not None:
            hooks.on_retry(exc, wait)

    def sleep(seconds: float) -> None:
        if policy.sleep is not None:
            policy.sleep(seconds)
        elif cancel is None:
            time.sleep(seconds)
        else:
            cancel.wait(seconds)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_retryable),
        stop=_Stop(policy),
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
