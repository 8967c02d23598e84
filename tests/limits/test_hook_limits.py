"""The connection's extras turn into shared limits: the hook's own calls and a records task draw from them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_anyfast.core.limits.account import FallbackBucket, account_key
from airflow_provider_anyfast.exceptions import AnyFastConfigError
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault


def connect(monkeypatch: pytest.MonkeyPatch, server: AnyFastTestServer, redis_url: str | None, **extra: Any) -> None:
    if redis_url:
        monkeypatch.setenv("AIRFLOW_CONN_LIMITS_REDIS", redis_url)
        extra["limits_conn_id"] = "limits_redis"
    conn = {"conn_type": "anyfast", "host": server.base_url, "password": server.token,
            "extra": {"max_retry_wait": 5, "backoff_initial": 0.01, "backoff_max": 0.05, **extra}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_DEFAULT", json.dumps(conn))


def test_two_hooks_on_one_connection_draw_from_one_bucket_in_redis(
    anyfast_server: AnyFastTestServer, redis_server: Any, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, anyfast_server, redis_server.url, requests_per_minute=60)
    one, other = AnyFastHook(), AnyFastHook()  # two tasks (or two workers) on the same account
    one.chat_completion("hello")
    (pace, _) = other._account_buckets or (None, None)
    assert pace is not None and 0.9 < pace.reserve() <= 1.0  # the burst of one is spent: the other waits its turn
    key = account_key(anyfast_server.base_url, anyfast_server.token) + ":requests"
    assert float(redis_client.hget(key, "rate")) == pytest.approx(1.0)  # 60 a minute, from the connection's extra
    dump = repr([(k, redis_client.hgetall(k)) for k in redis_client.keys("*")])
    assert anyfast_server.token not in dump


def test_a_hinted_429_to_one_hook_pauses_the_other(
    anyfast_server: AnyFastTestServer, redis_server: Any, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, anyfast_server, redis_server.url, requests_per_minute=6000)
    one, other = AnyFastHook(), AnyFastHook()
    anyfast_server.push_fault(Fault("rate_limit", retry_after=0.5))
    one.chat_completion("hello")  # 429, then the retry after the hint
    other.chat_completion("hello")
    log = [r for r in anyfast_server.requests if r.path == "/v1/chat/completions"]
    assert [r.status for r in log] == [429, 200, 200]
    (bucket, _) = other._account_buckets or (None, None)
    assert isinstance(bucket, FallbackBucket) and bucket.shared is not None  # still shared: no fallback
    assert float(redis_client.hget(bucket.shared.key, "pause")) > 0  # the pause is in Redis, for every worker


def test_limits_extras_are_checked_and_work_without_redis(
    anyfast_server: AnyFastTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, anyfast_server, None, requests_per_minute=-5)
    with pytest.raises(AnyFastConfigError, match=r"requests_per_minute.*greater than or equal to 1"):
        AnyFastHook().settings  # noqa: B018
    connect(monkeypatch, anyfast_server, None, tokens_per_minute=100000)
    hook = AnyFastHook()
    assert not hook.account_limits().shared
    assert hook.chat_completion("hello").text
