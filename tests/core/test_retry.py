"""Which failures are retried, how long we wait, and what the server sees (counted attempts)."""

from __future__ import annotations

import email.utils
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.retry import (
    CallObserver,
    RetryPolicy,
    call_with_retries,
    is_retryable,
    retry_after_from_headers,
)
from airflow_provider_anyfast.exceptions import (
    AnyFastAuthError,
    AnyFastBadRequestError,
    AnyFastConnectionError,
    AnyFastError,
    AnyFastQuotaExhaustedError,
    AnyFastRateLimitError,
    AnyFastRequestRefusedError,
    AnyFastRetryWaitTooLongError,
    AnyFastServerError,
    AnyFastTimeoutError,
)
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

RETRY_LOG = "airflow_provider_anyfast.retry"
BODY = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}


class Retries(list[tuple[str, int, float]]):
    """(status, attempt, wait) of each retry, as the retry loop hands them to its observer."""

    def observer(self) -> CallObserver:
        return CallObserver(on_retry=self.add)

    def add(self, exc: AnyFastError, wait: float) -> None:
        self.append((str(exc.status), len(self) + 1, wait))


def warned(caplog: pytest.LogCaptureFixture) -> int:
    """Retry lines logged, each a WARNING (a single call's retries are worth a warning)."""
    lines = [record for record in caplog.records if record.name == RETRY_LOG]
    assert all(record.levelno == logging.WARNING for record in lines)
    return len(lines)


def failing(*errors: BaseException) -> Callable[[], str]:
    """A call that raises ``errors`` in turn, then answers ``"ok"``."""
    queue = list(errors)

    def call() -> str:
        if queue:
            raise queue.pop(0)
        return "ok"

    return call


FAST = RetryPolicy(max_retries=3, max_retry_wait=5.0, backoff_initial=0.01, backoff_max=0.05)


# --- the wait the server asks for -------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0.05"}, 0.05),
        ({"Retry-After": "3", "retry-after-ms": "20"}, 0.02),  # the finer hint wins
        ({"Retry-After": "2", "retry-after-ms": "soon"}, 2.0),  # a bad ms value falls back
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: go now
        ({"Retry-After": "whenever"}, None),
        ({"Retry-After": ""}, None),
        ({}, None),
    ],
)
def test_retry_after_from_headers(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_from_headers(CaseInsensitiveDict(headers)) == expected


def test_retry_after_http_date_counts_from_now() -> None:
    now = 1_800_000_000.0
    headers = CaseInsensitiveDict({"Retry-After": email.utils.formatdate(now + 30, usegmt=True)})
    assert retry_after_from_headers(headers, now=now) == 30.0


@pytest.mark.parametrize(
    "kwargs", [{"max_retries": -1}, {"max_retry_wait": 0}, {"backoff_initial": -1}, {"backoff_max": -0.1}]
)
def test_policy_refuses_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_retryable_classes() -> None:
    assert all(is_retryable(c("x")) for c in (AnyFastRateLimitError, AnyFastServerError, AnyFastTimeoutError))
    assert is_retryable(AnyFastConnectionError("x"))
    assert not any(is_retryable(c("x")) for c in (AnyFastBadRequestError, AnyFastAuthError, AnyFastQuotaExhaustedError))
    assert not is_retryable(ValueError("x"))


# --- the loop itself --------------------------------------------------------------------------


def test_retries_until_success_and_counts_attempts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=RETRY_LOG)
    call = failing(AnyFastServerError("a", status=503), AnyFastConnectionError("b"))
    retries = Retries()
    outcome = call_with_retries(call, FAST, retries.observer())
    assert (outcome.value, outcome.attempts) == ("ok", 3)
    assert [(status, attempt) for status, attempt, _ in retries] == [("503", 1), ("None", 2)] and warned(caplog) == 2
    assert all(0 <= wait <= 0.05 for *_, wait in retries)


def test_gives_up_after_max_retries_with_attempts_on_the_error() -> None:
    call = failing(*(AnyFastServerError("down", status=500) for _ in range(5)))
    with pytest.raises(AnyFastServerError) as info:
        call_with_retries(call, RetryPolicy(max_retries=2, backoff_initial=0.01, backoff_max=0.01))
    assert info.value.attempts == 3


def test_never_retries_what_cannot_succeed() -> None:
    for error in (AnyFastBadRequestError("bad", status=400), AnyFastQuotaExhaustedError("q", status=429)):
        with pytest.raises(type(error)) as info:
            call_with_retries(failing(error), FAST)
        assert info.value.attempts == 1
    with pytest.raises(KeyError):
        call_with_retries(failing(KeyError("not ours")), FAST)


def test_server_hint_is_the_wait(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=RETRY_LOG)
    call = failing(AnyFastRateLimitError("slow down", status=429, retry_after=0.03))
    retries = Retries()
    outcome = call_with_retries(call, FAST, retries.observer())
    assert (outcome.value, outcome.attempts) == ("ok", 2)
    assert retries == [("429", 1, 0.03)] and warned(caplog) == 1


def test_hint_past_the_cap_fails_at_once() -> None:
    cause = AnyFastRateLimitError("slow down", status=429, code="rate_limit_exceeded", retry_after=30.0)
    with pytest.raises(AnyFastRetryWaitTooLongError, match="max_retry_wait=5s") as info:
        call_with_retries(failing(cause, cause), FAST)
    exc = info.value
    assert (exc.attempts, exc.retry_after, exc.status, exc.code) == (1, 30.0, 429, "rate_limit_exceeded")
    assert exc.__cause__ is cause


def test_a_long_hint_on_the_last_attempt_keeps_the_real_error() -> None:
    """With no retry left, the hint is moot: the caller sees the 429 itself, not a wait complaint."""
    cause = AnyFastRateLimitError("slow down", status=429, retry_after=30.0)
    with pytest.raises(AnyFastRateLimitError) as info:
        call_with_retries(failing(cause), RetryPolicy(max_retries=0, max_retry_wait=5))
    assert info.value is cause and info.value.attempts == 1


def test_call_hooks_see_each_attempt_and_retry() -> None:
    seen: list[str] = []
    hooks = CallObserver(before_attempt=lambda: seen.append("attempt"),
                      on_retry=lambda exc, wait: seen.append(f"retry {exc.status} {wait}"))  # fmt: skip
    call = failing(AnyFastRateLimitError("x", status=429, retry_after=0.01))
    outcome = call_with_retries(call, FAST, hooks)
    assert (outcome.value, outcome.attempts) == ("ok", 2)
    assert seen == ["attempt", "retry 429 0.01", "attempt"]


def test_cancel_stops_before_the_next_try() -> None:
    cancel = threading.Event()

    def call() -> str:
        cancel.set()
        raise AnyFastServerError("down", status=503)

    with pytest.raises(AnyFastConnectionError, match="cancelled") as info:
        call_with_retries(
            call, RetryPolicy(max_retries=3, backoff_initial=60, backoff_max=60), CallObserver(cancel=cancel)
        )
    assert info.value.attempts == 1


# --- over HTTP: the server counts the attempts ------------------------------------------------

RETRIED = [
    Fault("status", status=408),
    Fault("status", status=409),
    Fault("rate_limit"),
    Fault("server_error", status=500),
    Fault("server_error", status=502),
    Fault("server_error", status=503),
    Fault("server_error", status=504),
    Fault("drop"),
]


@pytest.mark.parametrize("fault", RETRIED, ids=lambda f: f"{f.kind}-{f.http_status}")
def test_retried_failures_over_http(
    anyfast_server: AnyFastTestServer, client: AnyFastClient, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=RETRY_LOG)
    anyfast_server.push_fault(fault, times=2)
    retries = Retries()
    result = client.chat(dict(BODY), retries.observer())
    assert result.completion.text == "Echo: hi" and result.attempts == 3
    assert anyfast_server.request_count() == 3
    expected_status = "None" if fault.kind == "drop" else str(fault.http_status)
    assert [(s, a) for s, a, _ in retries] == [(expected_status, 1), (expected_status, 2)] and warned(caplog) == 2


def test_retries_run_out_over_http(anyfast_server: AnyFastTestServer, client: AnyFastClient) -> None:
    anyfast_server.push_fault(Fault("server_error"), times=10)
    with pytest.raises(AnyFastServerError) as info:
        client.chat(dict(BODY))
    assert info.value.attempts == 4 and anyfast_server.request_count() == 4


NEVER_RETRIED = [
    (Fault("status", status=400), AnyFastBadRequestError),
    (Fault("status", status=401), AnyFastAuthError),
    (Fault("status", status=403), AnyFastRequestRefusedError),
    (Fault("status", status=404), AnyFastBadRequestError),
    (Fault("status", status=413), AnyFastBadRequestError),
    (Fault("status", status=422), AnyFastBadRequestError),
    (Fault("rate_limit", code="insufficient_quota", retry_after=0.01), AnyFastQuotaExhaustedError),
    (Fault("rate_limit", code="insufficient_user_quota"), AnyFastQuotaExhaustedError),
    (Fault("rate_limit", code="pre_consume_token_quota_failed"), AnyFastQuotaExhaustedError),
]


@pytest.mark.parametrize(("fault", "cls"), NEVER_RETRIED, ids=[f"{f.http_status}-{f.code}" for f, _ in NEVER_RETRIED])
def test_never_retried_over_http(
    anyfast_server: AnyFastTestServer, client: AnyFastClient, fault: Fault, cls: type[AnyFastError]
) -> None:
    anyfast_server.push_fault(fault, times=3)
    with pytest.raises(cls) as info:
        client.chat(dict(BODY))
    assert type(info.value) is cls and info.value.status == fault.http_status
    assert info.value.attempts == 1 and anyfast_server.request_count() == 1


def test_wrong_token_is_not_retried(anyfast_server: AnyFastTestServer) -> None:
    client = AnyFastClient(anyfast_server.base_url, "sk-wrong-token-000", retry=FAST)
    with pytest.raises(AnyFastAuthError, match="Invalid token"):
        client.chat(dict(BODY))
    assert anyfast_server.request_count() == 1


@pytest.mark.parametrize(
    ("fault", "wait"),
    [
        (Fault("rate_limit", retry_after=0.05), 0.05),
        (Fault("rate_limit", retry_after_ms=30), 0.03),
        (Fault("rate_limit", retry_after=3, retry_after_ms=20), 0.02),
        (Fault("rate_limit", retry_delay="0.04s"), 0.04),
        (Fault("rate_limit", retry_delay="0.04s", body_shape="list"), 0.04),
        (Fault("server_error", status=503, retry_after=0.06), 0.06),
    ],
    ids=["retry-after", "retry-after-ms", "ms-wins", "gemini", "gemini-list", "503-retry-after"],
)
def test_server_hint_is_honoured_over_http(
    anyfast_server: AnyFastTestServer,
    client: AnyFastClient,
    fault: Fault,
    wait: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=RETRY_LOG)
    anyfast_server.push_fault(fault)
    retries = Retries()
    assert client.chat(dict(BODY), retries.observer()).attempts == 2
    assert retries == [(str(fault.http_status), 1, wait)] and warned(caplog) == 1
    assert anyfast_server.request_count() == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault("rate_limit", retry_after=30),
        Fault("rate_limit", retry_after=120, retry_after_date=True),
        Fault("rate_limit", retry_after_ms=45_000),
        Fault("rate_limit", retry_delay="26s"),
    ],
    ids=["seconds", "http-date", "ms", "gemini"],
)
def test_wait_past_max_retry_wait_fails_at_once(
    anyfast_server: AnyFastTestServer, client: AnyFastClient, fault: Fault
) -> None:
    anyfast_server.push_fault(fault, times=3)
    with pytest.raises(AnyFastRetryWaitTooLongError, match="more than max_retry_wait=5s") as info:
        client.chat(dict(BODY))
    assert info.value.retry_after is not None and 25 <= info.value.retry_after <= 120
    assert info.value.status == 429 and info.value.attempts == 1
    assert anyfast_server.request_count() == 1


def test_attempts_that_never_connected_are_counted_unbilled() -> None:
    """A refused connection is retried like any drop, but the server never saw it: no attempt of it is billable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    waits: list[float] = []
    client = AnyFastClient(f"http://127.0.0.1:{port}", "sk-x", retry=RetryPolicy(max_retries=2, sleep=waits.append))
    with pytest.raises(AnyFastConnectionError) as info:
        client.chat(dict(BODY))
    cost = info.value.cost
    assert (cost.attempts, cost.unbilled, cost.billable) == (3, 3, 0) and len(waits) == 2
