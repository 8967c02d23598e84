"""Client-side limits with an injected clock: no sleeps, exact numbers."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_anyfast.core.records.limits import AdaptiveConcurrency, RateBucket, TokenBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_bucket_allows_one_second_of_burst_then_spaces_requests() -> None:
    clock = FakeClock()
    bucket = RateBucket(600, clock=clock)  # 10 a second
    assert [bucket.reserve() for _ in range(10)] == [0.0] * 10
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)  # reserved slots queue up
    clock.now += 0.3  # both queued slots have passed and one more unit has refilled
    assert bucket.reserve() == pytest.approx(0.0, abs=1e-9)
    assert bucket.reserve() == pytest.approx(0.1)


def test_rate_bucket_refills_at_the_rate_and_never_above_capacity() -> None:
    clock = FakeClock()
    bucket = RateBucket(60, clock=clock)  # 1 a second, burst 1
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(1.0)
    clock.now += 3600
    assert bucket.reserve() == 0.0  # an hour idle refills one second's worth, not 3600
    assert bucket.reserve() == pytest.approx(1.0)


def test_rate_bucket_token_amounts_and_adjustments() -> None:
    clock = FakeClock()
    bucket = RateBucket(6000, clock=clock)  # 100 tokens a second, burst 100
    assert bucket.reserve(80) == 0.0
    assert bucket.reserve(40) == pytest.approx(0.2)  # 20 short at 100/s
    bucket.adjust(-50)  # the first request cost 50 fewer tokens than estimated
    assert bucket.reserve(10) == 0.0
    bucket.adjust(-1000)  # giving back more than the capacity does not bank it
    assert bucket.reserve(100) == 0.0
    assert bucket.reserve(1) == pytest.approx(0.01)


class RecordingStop(threading.Event):
    """A stop that remembers each wait handed to it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


def test_rate_bucket_wait_ends_when_cancelled() -> None:
    bucket = RateBucket(1, clock=FakeClock())  # one a minute: the second acquire waits 60 s
    bucket.acquire()
    cancel = RecordingStop()
    cancel.set()
    bucket.acquire(1, cancel)  # returns at once instead of waiting the minute
    assert cancel.waits == [pytest.approx(60.0)], "the minute's wait is a wait on the stop, which ends it"


def test_rate_bucket_refuses_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="> 0"):
        RateBucket(0)


def test_adaptive_concurrency_halves_once_per_burst_of_rate_limits() -> None:
    clock = FakeClock()
    cap = AdaptiveConcurrency(8, clock=clock, cooldown=1.0)
    cap.on_rate_limited()
    cap.on_rate_limited()  # same burst, within the cooldown
    assert (cap.limit, cap.decreases) == (4, 1)
    for expected in (2, 1, 1):
        clock.now += 1.0
        cap.on_rate_limited()
        assert cap.limit == expected
    assert cap.decreases == 4


def test_adaptive_concurrency_grows_back_by_one_per_window_up_to_the_maximum() -> None:
    clock = FakeClock()
    cap = AdaptiveConcurrency(4, clock=clock)
    cap.on_rate_limited()
    cap.on_rate_limited()
    clock.now += 5
    cap.on_rate_limited()
    assert cap.limit == 1
    seen = []
    for _ in range(10):
        cap.on_success()
        seen.append(cap.limit)
    # one success at 1 -> 2, two at 2 -> 3, three at 3 -> 4, then it stays at the maximum
    assert seen == [2, 2, 3, 3, 3, 4, 4, 4, 4, 4]


def test_token_budget_counts_spent_plus_reserved() -> None:
    budget = TokenBudget(100)
    assert budget.try_reserve(60) and budget.try_reserve(50)  # 60 < 100 when the second asks
    assert not budget.try_reserve(1)  # 110 reserved
    budget.settle(60, 30)
    assert budget.try_reserve(10)  # 30 spent + 60 reserved
    assert not budget.exhausted
    budget.settle(50, 50)
    budget.settle(10, 25)
    assert budget.spent == 105 and budget.exhausted
    assert not budget.try_reserve(1)


def test_token_budget_without_a_maximum_never_runs_out() -> None:
    budget = TokenBudget(None)
    assert all(budget.try_reserve(10**9) for _ in range(3))
    budget.settle(10**9, 10**12)
    assert not budget.exhausted
