"""AnyFastHook over a real ``anyfast`` connection and the local server."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from airflow_provider_anyfast.core.params import KNOWN_MODELS, UnknownModelWarning
from airflow_provider_anyfast.core.responses import ChatCompletion
from airflow_provider_anyfast.exceptions import (
    AnyFastConfigError,
    AnyFastParameterError,
    AnyFastStreamError,
    AnyFastTimeoutError,
)
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

MakeHook = Callable[..., AnyFastHook]  # the conftest factory


def test_connection_type_attributes() -> None:
    assert AnyFastHook.conn_name_attr == "anyfast_conn_id"
    assert AnyFastHook.default_conn_name == "anyfast_default"
    assert AnyFastHook.conn_type == "anyfast"
    assert AnyFastHook.hook_name == "AnyFast"
    assert AnyFastHook().anyfast_conn_id == "anyfast_default"
    assert AnyFastHook(anyfast_conn_id="other").anyfast_conn_id == "other"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"host": None}, "https://www.anyfast.ai"),
        ({"host": "www.anyfast.ai"}, "https://www.anyfast.ai"),
        ({"host": "https://www.anyfast.ai/v1/"}, "https://www.anyfast.ai"),
        ({"host": "http://gw.internal/v1"}, "http://gw.internal"),
        ({"host": "127.0.0.1", "schema": "http", "port": 8765}, "http://127.0.0.1:8765"),
        ({"host": "gw.example.com", "port": 8443}, "https://gw.example.com:8443"),
    ],
)
def test_base_url_from_the_connection(make_hook: MakeHook, fields: dict[str, Any], expected: str) -> None:
    hook = make_hook(**fields)
    assert hook.get_conn() is hook.client
    assert hook.client.base_url == expected


def test_typed_extras_reach_the_client(make_hook: MakeHook) -> None:
    hook = make_hook(extra={"model": "gemini-2.0-flash", "timeout": "45.5", "connect_timeout": 3,
                            "max_retries": "2", "max_retry_wait": 9, "extra_models": "a-model, b-model"})  # fmt: skip
    settings = hook.settings
    assert (settings.model, settings.timeout, settings.max_retries, settings.max_retry_wait) == (
        "gemini-2.0-flash", 45.5, 2, 9.0)  # fmt: skip
    assert settings.extra_models == ("a-model", "b-model")
    assert hook.client.timeout == (3.0, 45.5)
    assert (hook.client.retry.max_retries, hook.client.retry.max_retry_wait) == (2, 9.0)
    assert (hook.client.retry.backoff_initial, hook.client.retry.backoff_max) == (0.01, 0.05)


def test_prefixed_and_blank_extras(make_hook: MakeHook) -> None:
    hook = make_hook(extra={"extra__anyfast__model": "gemini-2.5-pro", "timeout": "", "extra_models": ["x"]})
    assert hook.settings.model == "gemini-2.5-pro" and hook.settings.timeout == 120.0
    assert hook.settings.extra_models == ("x",)


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": "many"}, "max_retries"),
        ({"max_retry_wait": "forever"}, "max_retry_wait"),
        ({"extra_models": 5}, "extra_models"),
        ({"model": 3}, "model"),
    ],
)
def test_wrong_extra_types_name_the_extra(make_hook: MakeHook, extra: dict[str, Any], name: str) -> None:
    hook = make_hook(extra=extra)
    with pytest.raises(AnyFastConfigError, match=f"invalid anyfast connection extras: extra '{name}'"):
        hook.get_conn()
    ok, message = hook.test_connection()
    assert not ok and f"extra '{name}'" in message


def test_missing_token_is_reported(make_hook: MakeHook, anyfast_server: AnyFastTestServer) -> None:
    ok, message = make_hook(password=None).test_connection()
    assert not ok and "password" in message and anyfast_server.request_count(None) == 0


def test_connection_test_spends_no_tokens(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    assert hook.test_connection() == (True, f"Connection OK: the token may use {len(KNOWN_MODELS)} model(s).")
    assert anyfast_server.request_count("/v1/models") == 1 and anyfast_server.request_count() == 0


def test_connection_test_with_a_rejected_token(make_hook: MakeHook, anyfast_server: AnyFastTestServer) -> None:
    ok, message = make_hook(password="sk-not-the-right-token").test_connection()
    assert not ok and message.startswith("AnyFast rejected the API token (HTTP 401)")
    assert anyfast_server.request_count("/v1/models") == 1 and anyfast_server.request_count() == 0


def test_connection_test_with_an_unreachable_host(make_hook: MakeHook, closed_port: int) -> None:
    ok, message = make_hook(host=f"http://127.0.0.1:{closed_port}").test_connection()
    assert not ok and message.startswith(f"Could not reach AnyFast at http://127.0.0.1:{closed_port}")


def test_list_models(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    assert hook.list_models() == list(anyfast_server.models)
    assert anyfast_server.request_count() == 0


def test_chat_completion_returns_the_model(
    hook: AnyFastHook, anyfast_server: AnyFastTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_provider_anyfast.hooks.anyfast")
    completion = hook.chat_completion("Name three colours", model="gemini-2.5-pro")
    assert isinstance(completion, ChatCompletion)
    assert completion.text == "Echo: Name three colours" and completion.finish_reason == "stop"
    assert completion.choices[0].message.role == "assistant"
    assert completion.usage is not None and completion.usage.reasoning_tokens == 16
    assert completion.usage.prompt_tokens_details is not None
    assert anyfast_server.requests[-1].body["messages"] == [{"role": "user", "content": "Name three colours"}]
    assert "finish_reason=stop attempts=1" in caplog.text


def test_every_contract_parameter_is_sent(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    params: dict[str, Any] = {"max_tokens": 64, "temperature": 0.0, "top_p": 1.0, "frequency_penalty": -2.0,
                              "presence_penalty": 2.0, "stop": ["###", "END"], "n": 2, "reasoning_effort": "low",
                              "response_format": {"type": "text"}}  # fmt: skip
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    completion = hook.chat_completion(messages, **params)
    assert len(completion.choices) == 2
    assert anyfast_server.requests[-1].body == {"model": "gemini-2.5-flash", "messages": messages, **params}


def test_default_model_comes_from_the_connection(make_hook: MakeHook, anyfast_server: AnyFastTestServer) -> None:
    make_hook(extra={"model": "gemini-2.0-flash"}).chat_completion("hi")
    assert anyfast_server.requests[-1].body["model"] == "gemini-2.0-flash"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"temperature": 2.5}, "'temperature' must be <= 2"),
        ({"top_p": -0.1}, "'top_p' must be >= 0"),
        ({"max_tokens": 0}, "'max_tokens' must be >= 1"),
        ({"n": 0}, "'n' must be >= 1"),
        ({"presence_penalty": 2.5}, "'presence_penalty' must be <= 2"),
        ({"frequency_penalty": -3}, "'frequency_penalty' must be >= -2"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "'stop'"),
        ({"reasoning_effort": "max"}, "'reasoning_effort'"),
        ({"response_format": {"type": "yaml"}}, "'response_format'"),
        ({"temperatur": 1}, "unknown parameter 'temperatur'"),
    ],
)
@pytest.mark.parametrize("call", ["chat_completion", "stream_chat_completion", "complete_json"])
def test_bad_value_is_refused_before_any_request(
    hook: AnyFastHook, anyfast_server: AnyFastTestServer, call: str, params: dict[str, Any], expected: str
) -> None:
    with pytest.raises(AnyFastParameterError, match=re.escape(expected)):
        getattr(hook, call)("hello", **params)
    assert anyfast_server.request_count(None) == 0


@pytest.mark.parametrize("messages", [[], [{"role": "bot", "content": "x"}], [{"role": "user", "content": None}]])
def test_bad_messages_are_refused_before_any_request(
    hook: AnyFastHook, anyfast_server: AnyFastTestServer, messages: Any
) -> None:
    with pytest.raises(AnyFastParameterError, match="'messages"):
        hook.chat_completion(messages)
    assert anyfast_server.request_count(None) == 0


def test_unknown_model_warns_once_and_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    with AnyFastTestServer(token="sk-new-model-token", models=(*KNOWN_MODELS, "gemini-4-preview")) as server:
        conn = {"conn_type": "anyfast", "host": server.base_url, "password": server.token}
        monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_NEW", json.dumps(conn))
        with pytest.warns(UnknownModelWarning, match="'gemini-4-preview' is not in the known list") as record:
            completion = AnyFastHook("anyfast_new").chat_completion("hi", model="gemini-4-preview")
        assert len([w for w in record if w.category is UnknownModelWarning]) == 1
        assert completion.model == "gemini-4-preview" and server.request_count() == 1


def test_extra_models_extra_silences_the_warning(make_hook: MakeHook, recwarn: pytest.WarningsRecorder) -> None:
    hook = make_hook(extra={"extra_models": "gemini-4-preview"})
    assert hook.resolve_model("gemini-4-preview") == "gemini-4-preview"
    assert not [w for w in recwarn if w.category is UnknownModelWarning]


def test_stream_yields_text_deltas_then_the_completion(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    stream = hook.stream_chat_completion("Tell me a short story", temperature=0.5)
    deltas = list(stream)
    assert len(deltas) >= 2 and "".join(deltas) == "Echo: Tell me a short story"
    assert stream.completion is not None and stream.completion.text == "".join(deltas)
    assert stream.completion.finish_reason == "stop"
    assert stream.completion.usage is not None and stream.completion.usage.total_tokens > 0
    body = anyfast_server.requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.5


@pytest.mark.parametrize("kind", ["stream_error", "stream_no_done"])
def test_broken_stream_raises_stream_error(hook: AnyFastHook, anyfast_server: AnyFastTestServer, kind: str) -> None:
    anyfast_server.push_fault(Fault(kind))
    stream = hook.stream_chat_completion("Tell me a short story")
    with pytest.raises(AnyFastStreamError):
        list(stream)
    assert stream.completion is None and anyfast_server.request_count() == 1


def test_read_timeout_is_retried_then_raised(
    make_hook: MakeHook, anyfast_server: AnyFastTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="airflow_provider_anyfast.retry")
    anyfast_server.push_fault(Fault("slow", delay=1.0), times=2)
    hook = make_hook(extra={"timeout": 0.2, "max_retries": 1})
    with pytest.raises(AnyFastTimeoutError, match=r"within 0\.2s") as info:
        hook.chat_completion("hi")
    assert info.value.attempts == 2
    retries = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_anyfast.retry"]
    assert len(retries) == 1 and "AnyFastTimeoutError" in retries[0] and "attempt 1 of 2" in retries[0]


def test_pool_size_and_explicit_timeouts(make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch) -> None:
    make_hook(extra={"timeout": 30})
    hook = AnyFastHook(pool_size=48)
    transport = hook.client.transport
    assert transport.pool_size == hook.pool_size == 48
    assert transport._manager(*urlsplit(hook.client.base_url)[:2]).connection_pool_kw["maxsize"] == 48
    assert hook.client.timeout == (10.0, 30.0)
    assert AnyFastHook().pool_size == 16


# --- connections from the environment: URI and JSON -------------------------------------------


def _uri_forms(server: AnyFastTestServer) -> dict[str, str]:
    token, port = server.token, server.port
    extra = quote(json.dumps({"model": "gemini-2.0-flash", "max_retries": 0}), safe="")
    return {
        "schema-as-path": f"anyfast://:{token}@127.0.0.1:{port}/http?model=gemini-2.0-flash&max_retries=0",
        "encoded-host": f"anyfast://:{token}@{quote(server.base_url + '/v1', safe='')}?model=gemini-2.0-flash",
        "__extra__": f"anyfast://:{token}@127.0.0.1:{port}/http?__extra__={extra}",
    }


@pytest.mark.parametrize("form", ["schema-as-path", "encoded-host", "__extra__"])
def test_uri_connections_reach_the_local_server(
    anyfast_server: AnyFastTestServer, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_URI", _uri_forms(anyfast_server)[form])
    hook = AnyFastHook("anyfast_uri")
    assert hook.client.base_url == anyfast_server.base_url
    assert hook.settings.model == "gemini-2.0-flash"
    assert hook.chat_completion("hi").model == "gemini-2.0-flash"
    assert anyfast_server.request_count() == 1


def test_uri_without_a_scheme_means_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_README", "anyfast://:sk-abc123456@www.anyfast.ai?model=gemini-2.5-pro")
    hook = AnyFastHook("anyfast_readme")
    assert hook.client.base_url == "https://www.anyfast.ai" and hook.settings.model == "gemini-2.5-pro"
    monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_PORT", "anyfast://:sk-abc123456@127.0.0.1:8765")
    assert AnyFastHook("anyfast_port").client.base_url == "https://127.0.0.1:8765"


def test_json_connection_reaches_the_local_server(anyfast_conn: AnyFastTestServer) -> None:
    hook = AnyFastHook()
    assert hook.settings.max_retry_wait == 5
    assert hook.chat_completion("hi").text == "Echo: hi" and anyfast_conn.request_count() == 1


def test_connection_test_does_not_retry_an_unreachable_host(make_hook: MakeHook, closed_port: int) -> None:
    """The Test button answers after one try: no backoff loop while a person waits."""
    hook = make_hook(host=f"http://127.0.0.1:{closed_port}", extra={"max_retries": 5, "backoff_initial": 60})
    ok, message = hook.test_connection()
    assert not ok and "Could not reach" in message


def test_a_misspelled_extra_is_named_in_a_warning(make_hook: MakeHook, caplog: pytest.LogCaptureFixture) -> None:
    hook = make_hook(extra={"max_retires": 3})
    with caplog.at_level(logging.WARNING):
        assert hook.settings.max_retries == 5
    assert "unknown extra(s) max_retires ignored" in caplog.text
