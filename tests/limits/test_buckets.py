"""The shared bucket in a real Redis behaves as the local one does, and never stores the token."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airflow_provider_anyfast.core.limits.account import AccountLimits, FallbackBucket, account_key, acquire
from airflow_provider_anyfast.core.limits.budget import LimitsUnavailableError, RedisBudget
from airflow_provider_anyfast.core.limits.local import CUT_TO, LocalBucket, cut_rate
from airflow_provider_anyfast.core.limits.shared import RedisBucket

TOKEN = "sk-secret-token-never-in-redis"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_account_key_scopes_by_host_and_token_hash_not_the_token() -> None:
    key = account_key("https://www.anyfast.ai/v1", TOKEN)
    assert key.startswith("anyfast:www.anyfast.ai:") and TOKEN not in key
    assert key != account_key("https://www.anyfast.ai/v1", TOKEN + "x")
    assert key != account_key("http://127.0.0.1:8080", TOKEN)
    assert account_key("http://127.0.0.1:8080", TOKEN).startswith("anyfast:127.0.0.1:8080:")


def test_redis_bucket_schedules_like_the_local_one(redis_client: Any) -> None:
    shared = RedisBucket(redis_client, "anyfast:t:requests", 600)
    local = LocalBucket(600, clock=Clock())
    # 600/min = 10/s with a burst of 10: the 11th..30th requests are scheduled 0.1 s apart
    waits = [shared.reserve() for _ in range(30)]
    expected = [local.reserve() for _ in range(30)]
    assert waits[:10] == [0.0] * 10 and expected[:10] == [0.0] * 10
    assert waits[-1] == pytest.approx(expected[-1], abs=0.05)  # Redis's clock moved a little meanwhile
    assert expected[-1] == pytest.approx(2.0)


def test_a_hinted_429_pauses_every_bucket_user_and_the_rate_restarts_empty(redis_client: Any) -> None:
    one = RedisBucket(redis_client, "anyfast:t:requests", 600, adaptive=True)
    other = RedisBucket(redis_client, "anyfast:t:requests", 600, adaptive=True)  # another worker
    one.on_rate_limited(5.0)
    assert 4.5 < other.paused_for() <= 5.0
    first, second = other.reserve(), other.reserve()
    assert 5.0 < first <= 5.2 and second == pytest.approx(first + 0.1, abs=0.02)  # paced after it, no burst


def test_a_429_without_hint_cuts_to_just_under_the_measured_success_rate() -> None:
    clock = Clock()
    bucket = LocalBucket(None, adaptive=True, clock=clock)
    assert bucket.reserve() == 0.0 and bucket.rate is None  # unknown limit: not paced yet
    for _ in range(50):  # 10 successes a second for 5 s
        clock.now += 0.1
        bucket.on_success()
    bucket.on_rate_limited(None)
    assert bucket.rate == pytest.approx(CUT_TO * 10, rel=0.03)
    bucket.on_rate_limited(None)  # the same burst of 429s: one cut only
    assert bucket.cuts == 1
    before = bucket.rate
    for _ in range(100):
        bucket.on_success()
    assert bucket.rate == pytest.approx(before + 1.0)  # recovers slowly: +0.01/s per success
    assert cut_rate(None, 0.0) is None and cut_rate(2.0, 0.0) == 2.0  # nothing got through: nothing learnt
    assert cut_rate(10.0, 20.0) == CUT_TO * 10.0  # a burst that inflated the measure still cuts


def test_redis_bucket_cut_is_shared(redis_client: Any) -> None:
    one = RedisBucket(redis_client, "anyfast:t:requests", None, adaptive=True)
    other = RedisBucket(redis_client, "anyfast:t:requests", None, adaptive=True)
    for _ in range(20):
        one.on_success()
    assert one.reserve() == 0.0 and float(one.state()["rate"]) == 0.0  # not paced before a 429
    other.on_rate_limited(None)
    assert other.cuts == 1
    rate = float(one.state()["rate"])
    assert 0 < rate <= CUT_TO * 20  # 20 successes within the first second
    assert one.reserve() >= 0.0 and float(one.state()["rate"]) == rate


def test_budget_is_shared_between_instances_and_counts_the_real_spend(redis_client: Any) -> None:
    a = RedisBudget(redis_client, "anyfast:t:budget:job", "tokens", 100, ttl=60)
    b = RedisBudget(redis_client, "anyfast:t:budget:job", "tokens", 100, ttl=60)
    assert a.try_reserve(60) and b.try_reserve(60)  # 120 reserved: in flight when it ran out
    assert not a.try_reserve(1)
    a.settle(60, 30)
    b.settle(60, 40)
    assert a.spent == b.spent == 70 and not b.exhausted
    assert b.try_reserve(50)
    b.settle(50, 45)
    assert a.exhausted and not a.try_reserve(1)
    assert 0 < redis_client.ttl("anyfast:t:budget:job") <= 60


def test_redis_down_budget_fails_closed_rate_falls_back_with_one_warning(
    own_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = own_redis.client()
    limits = AccountLimits(requests_per_minute=600, redis=client, key="anyfast:t", budget_scope="job:x")
    pace, budget = limits.requests_bucket(), limits.budget("tokens", 1000)
    assert isinstance(pace, FallbackBucket) and budget is not None
    assert budget.try_reserve(10) and pace.reserve() == 0.0
    own_redis.stop()
    with pytest.raises(LimitsUnavailableError, match=r"cannot be reached.*limits_conn_id"):
        budget.try_reserve(10)
    budget.settle(10, 5)  # logged, never raised: the answer was paid for and is kept
    for _ in range(15):
        acquire(pace, 1, threading.Event())  # per process now: 600/min here alone
    assert pace.shared is None and pace.local.reserve() > 0
    warnings = [r for r in caplog.records if "falls back" in r.getMessage()]
    assert len(warnings) == 1 and TOKEN not in warnings[0].getMessage()
