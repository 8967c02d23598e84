"""The HTTP client against the local server: URLs, pooling, timeouts, streaming, failures."""

from __future__ import annotations

import pytest

from airflow_provider_anyfast import __version__
from airflow_provider_anyfast.core.client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    AnyFastClient,
    normalize_base_url,
    redact_url,
)
from airflow_provider_anyfast.core.retry import RetryPolicy
from airflow_provider_anyfast.core.transport import NO_RETRIES
from airflow_provider_anyfast.exceptions import (
    AnyFastConfigError,
    AnyFastConnectionError,
    AnyFastRateLimitError,
    AnyFastStreamError,
    AnyFastTimeoutError,
)
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

BODY = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "Say hello to the tests"}]}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "https://www.anyfast.ai"),
        ("", "https://www.anyfast.ai"),
        ("www.anyfast.ai", "https://www.anyfast.ai"),
        ("https://www.anyfast.ai/", "https://www.anyfast.ai"),
        ("https://www.anyfast.ai/v1", "https://www.anyfast.ai"),
        (" https://www.anyfast.ai/v1/ ", "https://www.anyfast.ai"),
        ("http://127.0.0.1:8765/v1", "http://127.0.0.1:8765"),
        ("gw.example.com/proxy/v1/", "https://gw.example.com/proxy"),
    ],
)
def test_base_url_forms(value: str | None, expected: str) -> None:
    assert normalize_base_url(value) == expected


@pytest.mark.parametrize("value", ["ftp://www.anyfast.ai", "https://", "https://any fast.ai", "http://:80"])
def test_bad_base_url_is_a_config_error(value: str) -> None:
    with pytest.raises(AnyFastConfigError, match="not an http\\(s\\) URL"):
        normalize_base_url(value)


def test_bad_base_url_error_hides_credentials() -> None:
    with pytest.raises(AnyFastConfigError) as info:
        normalize_base_url("ftp://alice:hunter2secret@files.example.com/")
    assert "hunter2secret" not in str(info.value) and "***@files.example.com" in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:pw@host:8080/v1?x=1", "http://***@host:8080/v1?x=1"),
        ("https://token@host", "https://***@host"),
        ("https://host/v1", "https://host/v1"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize("token", ["", "   "])
def test_missing_token_is_a_config_error(token: str) -> None:
    with pytest.raises(AnyFastConfigError, match="password"):
        AnyFastClient("http://127.0.0.1:1", token)


@pytest.mark.parametrize("timeouts", [{"connect_timeout": 0}, {"read_timeout": -1}])
def test_timeouts_must_be_positive(timeouts: dict[str, float]) -> None:
    with pytest.raises(AnyFastConfigError, match="timeouts"):
        AnyFastClient("http://127.0.0.1:1", "sk-x", **timeouts)


def test_explicit_timeouts_and_pool_size() -> None:
    client = AnyFastClient("http://127.0.0.1:1", "sk-x", pool_size=24)
    assert client.timeout == (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
    assert None not in client.timeout
    for scheme in ("http", "https"):
        pools = client.transport._manager(scheme, "example.com")
        assert client.transport.pool_size == 24
        assert pools.connection_pool_kw["maxsize"] == 24
        assert (NO_RETRIES.connect, NO_RETRIES.read, NO_RETRIES.status, NO_RETRIES.other) == (0, 0, 0, 0)  # ours
    tuned = AnyFastClient("http://127.0.0.1:1", "sk-x", connect_timeout=2.5, read_timeout=7, pool_size=0)
    assert tuned.timeout == (2.5, 7)
    assert tuned.transport.pool_size == 1


def test_chat_round_trip(anyfast_server: AnyFastTestServer, client: AnyFastClient) -> None:
    result = client.chat(dict(BODY))
    completion = result.completion
    assert result.attempts == 1
    assert completion.text == "Echo: Say hello to the tests" and completion.finish_reason == "stop"
    assert completion.model == "gemini-2.5-pro" and completion.id.startswith("chatcmpl-")
    assert completion.usage is not None and completion.usage.reasoning_tokens == 16
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens + 16
    [record] = anyfast_server.requests
    assert (record.method, record.path, record.status, record.auth_ok) == ("POST", "/v1/chat/completions", 200, True)
    assert record.body == BODY


def test_cached_tokens_reported_on_a_repeated_prompt(client: AnyFastClient) -> None:
    body = {**BODY, "messages": [{"role": "system", "content": "You are terse. " * 20}, *BODY["messages"]]}
    first = client.chat(body).completion.usage
    second = client.chat(body).completion.usage
    assert first is not None and second is not None
    assert first.cached_tokens == 0 and second.cached_tokens > 0


def test_user_agent_names_the_provider(client: AnyFastClient) -> None:
    assert client.transport.headers["User-Agent"] == f"airflow-provider-anyfast/{__version__}"


def test_list_models_spends_no_tokens(anyfast_server: AnyFastTestServer, client: AnyFastClient) -> None:
    models = client.list_models()
    assert [m["id"] for m in models] == list(anyfast_server.models)
    assert anyfast_server.request_count() == 0 and anyfast_server.request_count("/v1/models") == 1


def test_stream_yields_deltas_then_the_whole_completion(
    anyfast_server: AnyFastTestServer, client: AnyFastClient
) -> None:
    stream = client.stream(dict(STREAM_BODY))
    assert stream.completion is None and stream.attempts == 1
    deltas = list(stream)
    assert len(deltas) > 1 and "".join(deltas) == "Echo: Say hello to the tests"
    assert stream.completion is not None
    assert stream.completion.text == "".join(deltas) and stream.completion.finish_reason == "stop"
    assert stream.completion.usage is not None and stream.completion.usage.completion_tokens > 0
    assert anyfast_server.request_count() == 1


@pytest.mark.parametrize(("kind", "match"), [("stream_error", "mid-stream"), ("stream_no_done", "without \\[DONE\\]")])
def test_broken_stream_raises(anyfast_server: AnyFastTestServer, client: AnyFastClient, kind: str, match: str) -> None:
    anyfast_server.push_fault(Fault(kind))
    stream = client.stream(dict(STREAM_BODY))
    received: list[str] = []
    with pytest.raises(AnyFastStreamError, match=match) as info:
        received.extend(stream)
    assert stream.completion is None
    assert anyfast_server.request_count() == 1  # a half-read stream is never re-sent
    if kind == "stream_error":
        assert received and info.value.code == "stream_error" and "upstream stream interrupted" in str(info.value)


def test_opening_a_stream_is_retried(anyfast_server: AnyFastTestServer, client: AnyFastClient) -> None:
    anyfast_server.push_fault(Fault("rate_limit", retry_after=0.01))
    stream = client.stream(dict(STREAM_BODY))
    assert stream.attempts == 2 and "".join(stream).startswith("Echo:")


def test_stream_error_status_before_the_stream(anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.push_fault(Fault("rate_limit"))
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, retry=RetryPolicy(max_retries=0))
    with pytest.raises(AnyFastRateLimitError):
        client.stream(dict(STREAM_BODY))


def test_read_timeout_is_retried_then_raised(anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.push_fault(Fault("slow", delay=1.0), times=2)
    policy = RetryPolicy(max_retries=1, backoff_initial=0.01, backoff_max=0.01)
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, read_timeout=0.2, retry=policy)
    with pytest.raises(AnyFastTimeoutError, match=r"within 0\.2s") as info:
        client.chat(dict(BODY))
    assert info.value.attempts == 2  # both timed-out tries counted: either may be billed
    assert isinstance(info.value, AnyFastConnectionError)


def test_slow_answer_then_a_fast_one(anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.push_fault(Fault("slow", delay=1.0))
    policy = RetryPolicy(max_retries=2, backoff_initial=0.01, backoff_max=0.01)
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, read_timeout=0.2, retry=policy)
    result = client.chat(dict(BODY))
    assert result.attempts == 2 and result.completion.text.startswith("Echo:")


def test_unreachable_host(closed_port: int) -> None:
    policy = RetryPolicy(max_retries=2, backoff_initial=0.01, backoff_max=0.01)
    client = AnyFastClient(f"http://127.0.0.1:{closed_port}/v1", "sk-x", connect_timeout=2, retry=policy)
    with pytest.raises(AnyFastConnectionError, match=f"could not reach http://127.0.0.1:{closed_port}") as info:
        client.list_models()
    assert info.value.attempts == 3 and not isinstance(info.value, AnyFastTimeoutError)


def test_credentials_in_the_base_url_stay_out_of_errors_and_repr(closed_port: int) -> None:
    url = f"http://alice:hunter2secret@127.0.0.1:{closed_port}"
    client = AnyFastClient(url, "sk-x", retry=RetryPolicy(max_retries=0))
    assert "hunter2secret" not in repr(client) and "***@127.0.0.1" in repr(client)
    with pytest.raises(AnyFastConnectionError) as info:
        client.chat(dict(BODY))
    assert "hunter2secret" not in str(info.value) and "hunter2secret" not in repr(info.value)
    assert f"***@127.0.0.1:{closed_port}" in str(info.value)
