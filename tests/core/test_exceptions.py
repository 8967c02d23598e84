"""Error classes, built from every body shape a gateway or a proxy in front of it sends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.retry import RetryPolicy
from airflow_provider_anyfast.exceptions import (
    AnyFastAuthError,
    AnyFastBadRequestError,
    AnyFastError,
    AnyFastFilteredOutputError,
    AnyFastInvalidOutputError,
    AnyFastModelUnavailableError,
    AnyFastOutputError,
    AnyFastPromptBlockedError,
    AnyFastQuotaExhaustedError,
    AnyFastRateLimitError,
    AnyFastRequestRefusedError,
    AnyFastServerError,
    AnyFastTruncatedOutputError,
    error_from_response,
    gemini_retry_delay,
)
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

BODY = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
GEMINI_429 = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"}],
    }
}


def test_usual_dict_body_gives_every_detail() -> None:
    body = {"error": {"message": "Bad value (request id: 2026abc_DEF-9)", "type": "invalid_request_error",
                      "param": "top_p", "code": "invalid_value"}}  # fmt: skip
    exc = error_from_response(400, json.dumps(body).encode())
    assert type(exc) is AnyFastBadRequestError
    assert (exc.status, exc.code, exc.type, exc.request_id) == (400, "invalid_value", "invalid_request_error",
                                                                 "2026abc_DEF-9")  # fmt: skip
    assert exc.message == "AnyFast answered HTTP 400: Bad value (request id: 2026abc_DEF-9)"
    assert str(exc) == f"{exc.message} (status=400, code=invalid_value, request_id=2026abc_DEF-9)"
    assert repr(exc) == f"AnyFastBadRequestError({str(exc)!r})"
    assert exc.retry_after is None and exc.attempts == 0


@pytest.mark.parametrize("wrapped", [False, True])
def test_gemini_body_plain_or_list_wrapped(wrapped: bool) -> None:
    body: Any = [GEMINI_429] if wrapped else GEMINI_429
    exc = error_from_response(429, json.dumps(body))
    assert type(exc) is AnyFastRateLimitError
    assert (exc.code, exc.type, exc.retry_after) == ("429", "RESOURCE_EXHAUSTED", 26.0)
    assert "Resource has been exhausted" in exc.message


def test_header_hint_wins_over_the_body_hint() -> None:
    assert error_from_response(429, json.dumps(GEMINI_429), retry_after=0.5).retry_after == 0.5


def test_html_page_from_a_proxy_keeps_its_words() -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
    exc = error_from_response(502, page.encode())
    assert type(exc) is AnyFastServerError and exc.status == 502
    assert "502 Bad Gateway" in exc.message and "nginx" in exc.message and "<" not in exc.message
    assert exc.code is None and exc.type is None and exc.request_id is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"upstream connect error or disconnect/reset before headers", "upstream connect error"),
        (b"", "(empty body)"),
        (b"   \n", "(empty body)"),
        (b"\xff\xfe not utf-8 \x80", "not utf-8"),
        (b'"just a JSON string"', "just a JSON string"),
        (b"12345", "12345"),
        (b"null", "null"),
        (b"[]", "[]"),
        (b"[1, 2]", "[1, 2]"),
        (b'{"error": "plain string error"}', "plain string error"),
        (b'{"message": "top-level message"}', "top-level message"),
        (b'{"error": {"message": "", "status": "UNAVAILABLE"}}', "UNAVAILABLE"),
        (b'{"error": {"code": 500}}', '{"error": {"code": 500}}'),
        (b'{"error": null}', '{"error": null}'),
    ],
)
def test_odd_bodies_never_fail_and_stay_readable(raw: bytes, expected: str) -> None:
    exc = error_from_response(500, raw)
    assert isinstance(exc, AnyFastServerError)
    assert expected in exc.message


def test_long_bodies_are_cut_short() -> None:
    exc = error_from_response(500, "x" * 10_000)
    assert len(exc.message) < 600 and exc.message.endswith("...")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, AnyFastBadRequestError),
        (404, AnyFastBadRequestError),
        (413, AnyFastBadRequestError),
        (422, AnyFastBadRequestError),
        (418, AnyFastBadRequestError),
        (401, AnyFastAuthError),
        (403, AnyFastRequestRefusedError),
        (429, AnyFastRateLimitError),
        (408, AnyFastServerError),
        (409, AnyFastServerError),
        (500, AnyFastServerError),
        (502, AnyFastServerError),
        (503, AnyFastServerError),
        (504, AnyFastServerError),
    ],
)
def test_status_picks_the_class(status: int, cls: type[AnyFastError]) -> None:
    assert type(error_from_response(status, b"{}")) is cls


@pytest.mark.parametrize("code", ["insufficient_quota", "insufficient_user_quota", "pre_consume_token_quota_failed"])
@pytest.mark.parametrize("status", [429, 403])
def test_exhausted_quota_is_its_own_class(code: str, status: int) -> None:
    body = {"error": {"message": "quota gone", "type": "new_api_error", "code": code}}
    exc = error_from_response(status, json.dumps(body))
    assert type(exc) is AnyFastQuotaExhaustedError and exc.code == code and exc.status == status


def test_quota_in_the_error_type_of_a_429_is_exhausted_too() -> None:
    body = {"error": {"message": "no balance", "type": "insufficient_quota", "code": None}}
    assert type(error_from_response(429, json.dumps(body))) is AnyFastQuotaExhaustedError


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ([{"retryDelay": "26s"}], 26.0),
        ([{"@type": "other"}, {"retryDelay": "0.5s"}], 0.5),
        ([{"retryDelay": "1.5"}], 1.5),
        ([{"retryDelay": "soon"}], None),
        ("26s", None),
        (None, None),
    ],
)
def test_gemini_retry_delay(details: Any, expected: float | None) -> None:
    assert gemini_retry_delay({"details": details}) == expected
    assert gemini_retry_delay(None) is None


def test_output_errors_carry_raw_text_and_finish_reason() -> None:
    for cls in (AnyFastTruncatedOutputError, AnyFastFilteredOutputError, AnyFastInvalidOutputError):
        exc = cls("unusable", raw='{"a": 1', finish_reason="length")
        assert isinstance(exc, AnyFastOutputError) and isinstance(exc, AnyFastError)
        assert (exc.raw, exc.finish_reason, str(exc)) == ('{"a": 1', "length", "unusable")


def test_every_failure_mode_has_its_own_kind() -> None:
    def subclasses(cls: type[AnyFastError]) -> list[type[AnyFastError]]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    classes = [c for c in subclasses(AnyFastError) if c.__module__ == AnyFastError.__module__]
    assert len(classes) == 19
    assert len({c.kind for c in classes}) == len(classes)


# --- over HTTP: the test server renders each body shape --------------------------------------


@pytest.mark.parametrize("shape", ["dict", "list", "gemini", "html", "text"])
def test_each_body_shape_over_http(anyfast_server: AnyFastTestServer, shape: str) -> None:
    anyfast_server.push_fault(Fault("status", status=400, body_shape=shape))
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, retry=RetryPolicy(max_retries=3))
    with pytest.raises(AnyFastBadRequestError) as info:
        client.chat(dict(BODY))
    exc = info.value
    assert exc.status == 400 and "Bad request" in exc.message and "<" not in exc.message
    assert anyfast_server.request_count() == 1 and exc.attempts == 1
    if shape == "dict":
        assert exc.code == "bad_request" and exc.type == "invalid_request_error" and exc.request_id
    elif shape in ("list", "gemini"):
        assert exc.code == "400" and exc.type == "INVALID_ARGUMENT"
    else:
        assert exc.code is None and "400" in exc.message


@pytest.mark.parametrize("shape", ["list", "html", "text"])
def test_server_error_shapes_over_http(anyfast_server: AnyFastTestServer, shape: str) -> None:
    anyfast_server.push_fault(Fault("server_error", status=502, body_shape=shape))
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, retry=RetryPolicy(max_retries=0))
    with pytest.raises(AnyFastServerError, match="upstream answered badly") as info:
        client.chat(dict(BODY))
    assert info.value.status == 502


LITELLM_QUOTA = {
    "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "status": "RESOURCE_EXHAUSTED",
    }
}


@pytest.mark.parametrize("wrap", ["{}", "b'{}'"], ids=["json-string", "bytes-repr"])
def test_gemini_json_inside_a_message_string_is_read(wrap: str) -> None:
    """LiteLLM relays Gemini's error as a string in error.message, sometimes as a Python bytes repr."""
    limited = {"error": {**GEMINI_429["error"], "details": [{"retryDelay": "41s"}]}}
    for inner, cls, hint in ((limited, AnyFastRateLimitError, 41.0), (LITELLM_QUOTA, AnyFastQuotaExhaustedError, None)):
        message = "litellm.RateLimitError: VertexAIException - " + wrap.replace("{}", json.dumps(inner))
        exc = error_from_response(429, json.dumps({"error": {"message": message, "type": None, "code": "429"}}))
        assert (type(exc), exc.retry_after) == (cls, hint)
        assert inner["error"]["message"] in exc.message


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (503, {"error": {"message": "No available channel for model x", "type": "new_api_error",
                         "code": "model_not_found"}}, AnyFastModelUnavailableError),
        (400, {"error": {"message": "Invalid model name passed in model=x. Call `/v1/models`"}},
         AnyFastModelUnavailableError),
        (404, {"error": {"message": "The model `x` does not exist", "code": "model_not_found"}},
         AnyFastModelUnavailableError),
        (400, {"error": {"message": "blocked", "type": "prompt_blocked", "code": "prompt_blocked"}},
         AnyFastPromptBlockedError),
        (403, {"error": {"message": "insufficient quota", "code": "insufficient_user_quota"}},
         AnyFastQuotaExhaustedError),
        (403, {"error": {"message": "Invalid token", "type": "new_api_error"}}, AnyFastAuthError),
        (403, {"error": {"message": "Permission denied on the upstream", "type": "permission_error"}},
         AnyFastRequestRefusedError),
        (429, {"error": {"message": "upstream error", "type": "upstream_error", "code": 429}}, AnyFastRateLimitError),
    ],
)  # fmt: skip
def test_failures_are_classified_by_meaning(status: int, body: dict, cls: type[AnyFastError]) -> None:
    assert type(error_from_response(status, json.dumps(body))) is cls


def test_errors_name_the_server_they_came_from() -> None:
    assert AnyFastClient("https://www.anyfast.ai", "sk-x").source == "AnyFast"
    assert AnyFastClient("http://gateway.example:3000", "sk-x").source == "the server (gateway.example)"
    exc = error_from_response(500, b"oops", source="the server (gateway.example)")
    assert exc.message.startswith("the server (gateway.example) answered HTTP 500")


def test_a_per_minute_quota_without_a_hint_is_a_rate_limit_not_an_empty_balance() -> None:
    failure = {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
               "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]}  # fmt: skip
    inner = {"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
                       "details": [failure]}}  # fmt: skip
    outer = {"error": {"message": f"litellm.RateLimitError: VertexAIException - {json.dumps(inner)}", "code": "429"}}
    assert type(error_from_response(429, json.dumps(outer))) is AnyFastRateLimitError
