"""The API token stays secret: not in logs (ours or urllib3's), errors or reprs; Airflow masks it."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable

import pytest

from airflow_provider_anyfast.compat import AIRFLOW_V3
from airflow_provider_anyfast.exceptions import (
    AnyFastAuthError,
    AnyFastBadRequestError,
    AnyFastConnectionError,
    AnyFastError,
    AnyFastTimeoutError,
)
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

MakeHook = Callable[..., AnyFastHook]  # the conftest factory


def _redact(text: str) -> str:
    """Airflow's own secrets masker, the one ``mask_secret`` feeds."""
    if AIRFLOW_V3:
        from airflow.sdk._shared.secrets_masker import redact
    else:  # pragma: no cover - Airflow 2.11 leg
        from airflow.utils.log.secrets_masker import redact
    return str(redact(text))


def _leaks(secret: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    found = []
    for record in caplog.records:
        raw = f"{record.getMessage()} {record.args!r} {record.__dict__!r}"
        if secret in raw:
            found.append(f"{record.name}: {record.getMessage()}")
    return found


def test_token_never_reaches_a_log_line(
    hook: AnyFastHook, anyfast_server: AnyFastTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    token = anyfast_server.token
    anyfast_server.push_fault(Fault("server_error", retry_after=0.01))
    anyfast_server.push_fault(Fault("drop"))
    hook.chat_completion("hello", model="gemini-2.5-pro")
    assert "".join(hook.stream_chat_completion("stream me")).startswith("Echo:")
    hook.complete_json("json please")
    assert hook.test_connection()[0] and hook.list_models()
    anyfast_server.push_fault(Fault("status", status=400, body_shape="html"))
    with pytest.raises(AnyFastBadRequestError):
        hook.chat_completion("bad")
    names = {record.name for record in caplog.records}
    assert "airflow_provider_anyfast.retry" in names and "airflow_provider_anyfast.hooks.anyfast" in names
    assert any(name.startswith("urllib3") for name in names)  # its DEBUG lines were captured too
    assert _leaks(token, caplog) == [] and token not in caplog.text


def test_rejected_token_stays_out_of_errors_and_logs(
    make_hook: MakeHook, anyfast_server: AnyFastTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-token-" + uuid.uuid4().hex
    hook = make_hook(password=wrong)
    with pytest.raises(AnyFastAuthError) as info:
        hook.chat_completion("hi")
    ok, message = hook.test_connection()
    assert not ok
    for text in (str(info.value), repr(info.value), info.value.message, message):
        assert wrong not in text and anyfast_server.token not in text
    assert _leaks(wrong, caplog) == []


def test_timeouts_and_connection_errors_hide_the_token(
    make_hook: MakeHook, anyfast_server: AnyFastTestServer, closed_port: int
) -> None:
    token = anyfast_server.token
    anyfast_server.push_fault(Fault("slow", delay=1.0))
    slow = make_hook(extra={"timeout": 0.2, "max_retries": 0})
    with pytest.raises(AnyFastTimeoutError) as timeout:
        slow.chat_completion("hi")
    gone = make_hook("anyfast_gone", host=f"http://127.0.0.1:{closed_port}", extra={"max_retries": 0})
    with pytest.raises(AnyFastConnectionError) as unreachable:
        gone.chat_completion("hi")
    errors: list[AnyFastError] = [timeout.value, unreachable.value]
    for exc in errors:
        assert token not in str(exc) and token not in repr(exc) and token not in str(vars(exc))


def test_reprs_hide_the_token(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    token = anyfast_server.token
    for text in (repr(hook), str(hook), repr(hook.client), str(hook.client), repr(hook.settings)):
        assert token not in text
    assert repr(hook.client) == f"AnyFastClient(base_url={anyfast_server.base_url!r})"


def test_credentials_in_the_base_url_are_redacted(
    make_hook: MakeHook, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = make_hook(host=f"http://alice:hunter2pass@127.0.0.1:{closed_port}/v1", extra={"max_retries": 1})
    ok, message = hook.test_connection()
    assert not ok and "hunter2pass" not in message and f"***@127.0.0.1:{closed_port}" in message
    with pytest.raises(AnyFastConnectionError) as info:
        hook.chat_completion("hi")
    assert "hunter2pass" not in str(info.value) and "***@127.0.0.1" in str(info.value)
    assert "hunter2pass" not in repr(hook.client) and _leaks("hunter2pass", caplog) == []


def test_token_is_registered_with_airflow_secrets_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    token = f"sk-mask-me-{uuid.uuid4().hex}"
    with AnyFastTestServer(token=token) as server:
        conn = {"conn_type": "anyfast", "host": server.base_url, "password": token}
        monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_MASKED", json.dumps(conn))
        line = f"Authorization: Bearer {token}"
        assert token in _redact(line)  # not known to the masker before the hook reads the connection
        hook = AnyFastHook("anyfast_masked")
        assert hook.test_connection()[0]
        assert _redact(line) == "Authorization: Bearer ***"
