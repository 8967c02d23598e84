"""The request contract: each parameter's range, the message shape, the model list."""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import pytest

from airflow_provider_anyfast.core.params import (
    DEFAULT_MODEL,
    KNOWN_MODELS,
    PARAM_NAMES,
    UnknownModelWarning,
    check_model,
    validate_messages,
    validate_params,
)
from airflow_provider_anyfast.core.request import build_request
from airflow_provider_anyfast.exceptions import AnyFastParameterError

USER = [{"role": "user", "content": "hi"}]
CONTRACT_MODELS = (
    "gemini-3.1-pro-preview",
    "gemini-3.1-flash-image-preview",
    "gemini-3.1-flash-lite-preview",
    "gemini-3-pro-preview",
    "gemini-3-pro-image-preview",
    "gemini-3-flash-preview",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
)
AT_BOUNDS: dict[str, Any] = {
    "max_tokens": 1,
    "temperature": 2,
    "top_p": 0,
    "frequency_penalty": -2,
    "presence_penalty": 2,
    "stop": ["a", "b", "c", "d"],
    "n": 1,
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    "reasoning_effort": "high",
}


def test_known_models_are_the_contract_list_and_default_is_one_of_them() -> None:
    assert set(KNOWN_MODELS) == set(CONTRACT_MODELS)
    assert DEFAULT_MODEL in KNOWN_MODELS


def test_every_contract_parameter_is_accepted_at_its_bounds() -> None:
    assert set(AT_BOUNDS) <= PARAM_NAMES
    assert validate_params(AT_BOUNDS) == AT_BOUNDS
    other_ends = {"temperature": 0, "top_p": 1, "frequency_penalty": 2, "presence_penalty": -2, "stop": "END"}
    assert validate_params(other_ends) == other_ends
    for fmt in ({"type": "text"}, {"type": "json_object"}):
        assert validate_params({"response_format": fmt}) == {"response_format": fmt}


def test_unset_parameters_are_not_sent() -> None:
    assert validate_params({"temperature": None, "max_tokens": None}) == {}
    assert validate_params({}) == {}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("max_tokens", 0, "'max_tokens' must be >= 1"),
        ("temperature", -0.1, "'temperature' must be >= 0"),
        ("temperature", 2.01, "'temperature' must be <= 2"),
        ("temperature", math.inf, "'temperature' must be <= 2"),
        ("temperature", math.nan, "'temperature' must be"),
        ("top_p", -0.5, "'top_p' must be >= 0"),
        ("top_p", 1.5, "'top_p' must be <= 1"),
        ("frequency_penalty", -2.5, "'frequency_penalty' must be >= -2"),
        ("frequency_penalty", 2.5, "'frequency_penalty' must be <= 2"),
        ("presence_penalty", -3, "'presence_penalty' must be >= -2"),
        ("presence_penalty", 3, "'presence_penalty' must be <= 2"),
        ("n", 0, "'n' must be >= 1"),
    ],
)
def test_out_of_range_value_names_field_range_and_value(field: str, value: float, expected: str) -> None:
    with pytest.raises(AnyFastParameterError, match=re.escape(expected)) as info:
        validate_params({field: value})
    assert f"(got {value!r})" in str(info.value)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": []}, "stop"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"n": "many"}, "n"),
    ],
)
def test_wrong_kind_of_value_names_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(AnyFastParameterError, match=f"'{field}'"):
        validate_params(params)


def test_unknown_parameter_is_refused_with_the_accepted_names() -> None:
    with pytest.raises(AnyFastParameterError) as info:
        validate_params({"temprature": 0.5})
    text = str(info.value)
    assert "unknown parameter 'temprature'" in text
    assert all(name in text for name in ("temperature", "top_p", "max_tokens", "reasoning_effort"))


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(AnyFastParameterError) as info:
        validate_params({"temperature": 5, "top_p": 9})
    assert "'temperature'" in str(info.value) and "'top_p'" in str(info.value)


def test_parameter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_params({"n": 0})


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "'messages'"),
        ("hello", "'messages'"),
        (None, "'messages'"),
        (["hello"], "'messages[0]'"),
        ([{"role": "robot", "content": "x"}], "'messages[0].role'"),
        ([{"content": "x"}], "'messages[0].role'"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": 3}], "'messages[1].content'"),
        ([{"role": "user"}], "'messages[0].content'"),
    ],
)
def test_bad_message_list_names_the_message(messages: Any, field: str) -> None:
    with pytest.raises(AnyFastParameterError, match=re.escape(field)):
        validate_messages(messages)


def test_valid_messages_come_back_as_copies() -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    checked = validate_messages(messages)
    assert checked == messages
    checked[0]["content"] = "changed"
    assert messages[0]["content"] == "be brief"


def test_known_model_passes_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_model("gemini-2.5-pro") == "gemini-2.5-pro"


def test_unknown_model_warns_but_is_kept() -> None:
    with pytest.warns(UnknownModelWarning, match="gemini-9-ultra"):
        assert check_model("gemini-9-ultra") == "gemini-9-ultra"


def test_extra_models_silence_the_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_model("gemini-9-ultra", ["other", "gemini-9-ultra"]) == "gemini-9-ultra"


@pytest.mark.parametrize("model", [None, "", "   ", 42])
def test_missing_model_is_refused(model: Any) -> None:
    with pytest.raises(AnyFastParameterError, match="'model'"):
        check_model(model)


def test_build_request_holds_checked_fields() -> None:
    body = build_request(USER, model="gemini-2.5-flash", params={"temperature": 0.2, "top_p": None})
    assert body == {"model": "gemini-2.5-flash", "messages": USER, "temperature": 0.2}


def test_build_request_for_streaming_asks_for_usage() -> None:
    body = build_request(USER, model="gemini-2.5-flash", params={}, stream=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "stream" not in build_request(USER, model="gemini-2.5-flash", params={})


@pytest.mark.parametrize("key", ["stream", "model", "messages"])
def test_build_request_refuses_reserved_keys_in_params(key: str) -> None:
    with pytest.raises(AnyFastParameterError, match=key):
        build_request(USER, model="gemini-2.5-flash", params={key: True})


def test_build_request_checks_params_and_messages() -> None:
    with pytest.raises(AnyFastParameterError, match="'temperature'"):
        build_request(USER, model="gemini-2.5-flash", params={"temperature": 3})
    with pytest.raises(AnyFastParameterError, match="'messages'"):
        build_request([], model="gemini-2.5-flash", params={})
