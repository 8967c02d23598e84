"""The connection test and network errors say what happened and what to do, in the form's words."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_anyfast.exceptions import AnyFastConnectionError
from airflow_provider_anyfast.testing.server import AnyFastTestServer

MakeHook = Any  # the make_hook fixture of tests/hooks/conftest.py


def test_a_misspelt_extra_fails_the_connection_test(make_hook: MakeHook, anyfast_server: AnyFastTestServer) -> None:
    ok, message = make_hook(extra={"modle": "gemini-2.5-pro"}).test_connection()
    assert not ok and "Unknown extra(s) 'modle' (did you mean 'model'?)" in message
    assert anyfast_server.request_count(None) == 0  # nothing sent while the form is wrong


def test_a_rejected_token_is_called_the_api_token(make_hook: MakeHook, anyfast_server: AnyFastTestServer) -> None:
    ok, message = make_hook("qwertyuiop", password="sk-wrong").test_connection()
    assert not ok and "check this connection's API token" in message
    assert "password" not in message and "qwertyuiop" not in message  # the UI tests under a random id


def test_https_to_a_plain_http_server_says_to_write_http(
    make_hook: MakeHook, anyfast_server: AnyFastTestServer
) -> None:
    host = anyfast_server.base_url.removeprefix("http://")  # no scheme: taken as https
    ok, message = make_hook(host=host).test_connection()
    assert not ok and "TLS (https) handshake" in message and "write http:// in the Base URL" in message
    assert message.endswith("(a Base URL without a scheme is taken as https)")


def test_a_refused_connection_says_whether_the_server_runs(make_hook: MakeHook, closed_port: int) -> None:
    hook = make_hook(host=f"http://127.0.0.1:{closed_port}", extra={"max_retries": 0})
    with pytest.raises(AnyFastConnectionError) as caught:
        hook.chat_completion("hi")
    assert f"127.0.0.1 refused the connection on port {closed_port}: is the server running there?" in str(caught.value)


def test_the_documented_uri_form_reaches_a_plain_http_server(
    anyfast_server: AnyFastTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_anyfast.hooks.anyfast import AnyFastHook

    host_port = anyfast_server.base_url.removeprefix("http://")
    monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_LOCAL", f"anyfast://:{anyfast_server.token}@{host_port}/http")
    hook = AnyFastHook(anyfast_conn_id="anyfast_local")
    assert hook.base_url == anyfast_server.base_url
    assert hook.test_connection()[0] is True


def test_every_form_field_says_what_it_holds_and_its_range() -> None:
    """Airflow 3.3 shows no placeholders for extras and ignores exclusiveMinimum: descriptions and minimums."""
    from airflow_provider_anyfast.core.extras import conn_fields

    fields = conn_fields()
    for name, field in fields.items():
        assert "default" in field["description"].lower(), name
        assert "exclusiveMinimum" not in field["schema"], name
        if "number" in field["schema"]["type"] or "integer" in field["schema"]["type"]:
            assert "minimum" in field["schema"], name
    assert "comma-separated" in fields["extra_models"]["description"].lower()


def test_the_form_and_the_settings_model_take_their_ranges_from_one_table() -> None:
    """A form field's bounds are the bounds the settings model enforces: the top is allowed, one above is not."""
    from airflow_provider_anyfast.core.extras import conn_fields
    from airflow_provider_anyfast.core.settings import ConnectionSettings
    from airflow_provider_anyfast.exceptions import AnyFastConfigError

    bounded = {name: field["schema"] for name, field in conn_fields().items() if "maximum" in field["schema"]}
    assert set(bounded) == {"timeout", "max_retries", "max_retry_wait"}
    for name, schema in bounded.items():
        assert getattr(ConnectionSettings.from_extras({name: schema["maximum"]}), name) == schema["maximum"]
        assert ConnectionSettings.from_extras({name: schema["minimum"]})
        with pytest.raises(AnyFastConfigError, match=name):
            ConnectionSettings.from_extras({name: schema["maximum"] + 1})


def test_airflow2_form_widgets_carry_the_same_descriptions() -> None:
    pytest.importorskip("flask_appbuilder")  # Airflow 2.11's form only
    from airflow_provider_anyfast.core.extras import conn_fields
    from airflow_provider_anyfast.hooks.anyfast import AnyFastHook

    widgets = AnyFastHook.get_connection_form_widgets()  # Airflow 2.11's form
    assert {name: str(widget.kwargs["description"]) for name, widget in widgets.items()} == {
        name: field["description"] for name, field in conn_fields().items()
    }
