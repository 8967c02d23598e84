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
from typing import Literal, TypeVar

import tenacity

from airflow_provider_anyfast.core.outcome import Cost, Outcome
from airflow_provider_anyfast.exceptions import (
    AnyFastConnectionError,
    AnyFastError,
    AnyFastRateLimitError,
    AnyFastRetryWaitTooLongError,
    AnyFastServerError,
)

log = logging.getLogger("airflow_provider_anyfast.retry")
T = TypeVar("T")

Verdict = Literal["exhausted", "too_long"]
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

    def verdict(self, rate_limited: bool, wait: float, waited: float, failures: int) -> Verdict | None:
        """Whether a retryable failure is tried again after ``wait`` seconds: None to retry, else why not.

        ``waited`` is the time already slept on this call, ``failures`` the failures so far that
        were not rate limits. A wait past ``max_retry_wait`` is refused (``"too_long"``) unless no
        retry was left anyway: then the failure itself is what the caller should see.
        """
        if self.max_retries == 0:
            return "exhausted"
        if rate_limited:
            if wait > self.max_retry_wait:
                return "too_long"
            return "exhausted" if waited + wait > self.rate_limit_budget else None
        if failures > self.max_retries:
            return "exhausted"
        return "too_long" if wait > self.max_retry_wait else None


@dataclass(slots=True)
class CallObserver:
    """What watches each attempt of one call: the record engine's rate limiter and adaptive concurrency.

    Not an Airflow hook: callbacks the retry loop calls, and the event that cancels it.
    """

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


class _Decide(tenacity.stop.stop_base):
    """tenacity's stop, seeing the computed wait: the one place that says whether a failure is tried again.

    ``verdict`` is why it stopped: ``"exhausted"`` (the failure itself is raised) or
    ``"too_long"`` (the server's wait is refused, as ``AnyFastRetryWaitTooLongError``).
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0
        self.verdict: Verdict | None = None

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        rate_limited = isinstance(exc, AnyFastRateLimitError)
        if not rate_limited:
            self.failures += 1
        self.verdict = self.policy.verdict(
            rate_limited, retry_state.upcoming_sleep or 0.0, retry_state.idle_for, self.failures
        )
        return self.verdict is not None


def _too_long(policy: RetryPolicy, exc: AnyFastError, wait: float) -> AnyFastRetryWaitTooLongError:
    too_long = AnyFastRetryWaitTooLongError(
        f"{exc.source} asked to wait {wait:.1f}s before retrying, more than max_retry_wait="
        f"{policy.max_retry_wait:.0f}s; failing now instead of blocking. Raise the "
        "connection's 'max_retry_wait' extra or lower the request rate.",
        status=exc.status,
        code=exc.code,
        retry_after=wait,
    )
    too_long.source = exc.source
    return too_long


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, observer: CallObserver | None = None) -> Outcome[T]:
    """Run ``fn`` under the policy; return its result with the attempts it took.

    A raised ``AnyFastError`` carries the same count in ``exc.cost``: every try may have been billed.
    """
    observer = observer or CallObserver()
    cancel = observer.cancel
    decide = _Decide(policy)

    def before(state: tenacity.RetryCallState) -> None:
        if cancel is not None and cancel.is_set() and state.attempt_number > 1:
            raise AnyFastConnectionError("cancelled before retry: the task is being stopped")
        if observer.before_attempt is not None:
            observer.before_attempt()

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.upcoming_sleep
        assert isinstance(exc, AnyFastError)
        log.log(  # a records run tallies retries in its progress line: there they are only DEBUG
            logging.WARNING if observer.log_retries else logging.DEBUG,
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
        if observer.on_retry is not None:
            observer.on_retry(exc, wait)

    def stopped(state: tenacity.RetryCallState) -> T:
        exc = state.outcome.exception() if state.outcome else None
        if decide.verdict == "too_long" and isinstance(exc, AnyFastError):
            raise _too_long(policy, exc, state.upcoming_sleep) from exc
        return state.outcome.result()  # type: ignore[union-attr]  # raises the failure itself

    def sleep(seconds: float) -> None:
        if policy.sleep is not None:
            policy.sleep(seconds)
        elif cancel is None:
            time.sleep(seconds)
        else:
            cancel.wait(seconds)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_retryable),
        stop=decide,
        wait=_HintedWait(policy),
        before=before,
        before_sleep=before_sleep,
        retry_error_callback=stopped,
        sleep=sleep,
        reraise=True,
    )
    attempts = unbilled = 0

    def counted() -> T:
        nonlocal attempts, unbilled
        attempts += 1
        try:
            return fn()
        except AnyFastConnectionError as exc:
            unbilled += not exc.sent  # never reached the server: a connect timeout, a refused connection
            raise

    try:
        result = retrying(counted)
    except AnyFastError as exc:
        exc.cost = exc.cost + Cost(attempts, unbilled)
        raise
    return Outcome(result, Cost(attempts, unbilled))
