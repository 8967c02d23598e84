"""complete_json: JSON mode, schema in the instructions, unusable answers, re-asks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from airflow_provider_anyfast.core.gemini_schema import gemini_schema
from airflow_provider_anyfast.exceptions import (
    AnyFastConfigError,
    AnyFastFilteredOutputError,
    AnyFastInvalidOutputError,
    AnyFastParameterError,
    AnyFastTruncatedOutputError,
)
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault
from airflow_provider_anyfast.testing.usage import usage_for

PROMPT = "Classify this item: red running shoes, size 42"
SCHEMA_DICT = {
    "type": "object",
    "properties": {"category": {"type": "string"}, "in_stock": {"type": "boolean"}},
    "required": ["category", "in_stock"],
    "additionalProperties": False,
}


class Product(BaseModel):
    category: str
    price: float
    tags: list[str]


def bodies(server: AnyFastTestServer) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if r.path == "/v1/chat/completions"]


def test_plain_json_mode(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    value = hook.complete_json(PROMPT)
    assert isinstance(value, dict) and value["answer"].startswith("Answer of: Classify this item")
    [body] = bodies(anyfast_server)
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system" and system["content"].startswith("Answer with one JSON value only")
    assert "JSON schema" not in system["content"]
    assert user == {"role": "user", "content": PROMPT}


def test_pydantic_schema_gives_a_validated_instance(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    messages = [{"role": "system", "content": "You are a shop assistant."}, {"role": "user", "content": PROMPT}]
    value = hook.complete_json(messages, schema=Product, temperature=0)
    assert isinstance(value, Product) and isinstance(value.tags, list)
    [body] = bodies(anyfast_server)
    assert body["temperature"] == 0 and body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]["content"]
    assert len(body["messages"]) == 2 and system.endswith("\n\nYou are a shop assistant.")
    assert "The JSON must validate against this JSON schema" in system and '"price":{"title":"Price"' in system


def test_json_schema_dict_gives_a_checked_value(hook: AnyFastHook) -> None:
    value = hook.complete_json(PROMPT, schema=SCHEMA_DICT)
    assert set(value) == {"category", "in_stock"} and isinstance(value["in_stock"], bool)


def test_use_json_schema_sends_the_strict_schema(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    assert isinstance(hook.complete_json(PROMPT, schema=Product, use_json_schema=True), Product)
    hook.complete_json(PROMPT, use_json_schema=True)  # no schema known: plain JSON mode
    first, second = bodies(anyfast_server)
    assert first["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Product", "schema": gemini_schema(Product.model_json_schema()), "strict": True},
    }
    assert "The JSON must validate" in first["messages"][0]["content"]  # the instructions carry it too
    assert second["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("kind", ["fence", "prose"])
def test_fences_and_prose_are_stripped(hook: AnyFastHook, anyfast_server: AnyFastTestServer, kind: str) -> None:
    anyfast_server.push_fault(Fault(kind))
    value = hook.complete_json(PROMPT, schema=SCHEMA_DICT)
    assert set(value) == {"category", "in_stock"}
    assert anyfast_server.request_count() == 1


def test_cut_off_answer_is_never_repaired(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.push_fault(Fault("truncated"))
    with pytest.raises(AnyFastTruncatedOutputError, match="max_tokens") as info:
        hook.complete_json(PROMPT, schema=SCHEMA_DICT, max_tokens=50)
    assert info.value.finish_reason == "length" and info.value.raw and info.value.raw.startswith("{")
    assert anyfast_server.request_count() == 1  # not re-asked


@pytest.mark.parametrize(("kind", "reason"), [("filtered", "content_filter"), ("filtered_raw", "SAFETY")])
def test_filtered_answer(hook: AnyFastHook, anyfast_server: AnyFastTestServer, kind: str, reason: str) -> None:
    anyfast_server.push_fault(Fault(kind))
    with pytest.raises(AnyFastFilteredOutputError, match="safety filter") as info:
        hook.complete_json(PROMPT)
    assert info.value.finish_reason == reason and info.value.raw == ""
    assert anyfast_server.request_count() == 1


def test_empty_answer(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.push_fault(Fault("empty"))
    with pytest.raises(AnyFastInvalidOutputError, match="empty") as info:
        hook.complete_json(PROMPT)
    assert info.value.raw == "" and info.value.finish_reason == "stop"


def test_invalid_json_is_re_asked_with_the_problem(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.push_fault(Fault("invalid_json"))
    value = hook.complete_json(PROMPT, schema=SCHEMA_DICT)
    assert set(value) == {"category", "in_stock"}
    first, second = bodies(anyfast_server)
    assert second["messages"][: len(first["messages"])] == first["messages"]
    bad_answer, complaint = second["messages"][len(first["messages"]) :]
    assert bad_answer["role"] == "assistant" and bad_answer["content"].startswith('{"category": "shoes"')
    assert complaint["role"] == "user" and "no valid JSON" in complaint["content"]
    assert second["response_format"] == first["response_format"]


def test_schema_mismatch_is_re_asked_with_the_validation_error(
    hook: AnyFastHook, anyfast_server: AnyFastTestServer
) -> None:
    anyfast_server.push_fault(Fault("schema_mismatch"))
    assert isinstance(hook.complete_json(PROMPT, schema=Product), Product)
    complaint = bodies(anyfast_server)[1]["messages"][-1]["content"]
    assert "does not match the schema Product" in complaint
    assert all(field in complaint for field in ("category", "price", "tags"))


def test_still_invalid_after_the_re_asks(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.push_fault(Fault("schema_mismatch"), times=5)
    with pytest.raises(AnyFastInvalidOutputError, match="after 2 ask") as info:
        hook.complete_json(PROMPT, schema=SCHEMA_DICT)  # max_output_retries defaults to 1
    assert info.value.raw == '{"unexpected": true}'
    assert info.value.attempts == 2 and info.value.usage and info.value.usage["total_tokens"] > 0
    assert anyfast_server.request_count() == 2


@pytest.mark.parametrize(("retries", "requests"), [(0, 1), (2, 3)])
def test_max_output_retries(hook: AnyFastHook, anyfast_server: AnyFastTestServer, retries: int, requests: int) -> None:
    anyfast_server.push_fault(Fault("invalid_json"), times=5)
    with pytest.raises(AnyFastInvalidOutputError) as info:
        hook.complete_json(PROMPT, max_output_retries=retries)
    assert info.value.raw is not None and info.value.raw.startswith('{"category"')
    assert anyfast_server.request_count() == requests


def test_http_retries_inside_json_mode(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.push_fault(Fault("rate_limit", retry_after=0.01))
    assert hook.complete_json(PROMPT)["answer"]
    assert anyfast_server.request_count() == 2


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_output_retries": -1}, ValueError),
        ({"schema": {"type": "objekt"}}, AnyFastConfigError),
        ({"schema": int}, AnyFastConfigError),
        ({"top_p": 2}, AnyFastParameterError),
    ],
)
def test_bad_arguments_send_nothing(
    hook: AnyFastHook, anyfast_server: AnyFastTestServer, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        hook.complete_json(PROMPT, **kwargs)
    assert anyfast_server.request_count(None) == 0


def test_a_re_asked_call_reports_the_cost_of_every_ask(hook: AnyFastHook, anyfast_server: AnyFastTestServer) -> None:
    """The hook's last_call (lineage, metrics) is the call's Cost: both asks, not only the last."""
    anyfast_server.push_fault(Fault("invalid_json"))
    hook.complete_json(PROMPT, schema=SCHEMA_DICT)
    _, usage, attempts = hook.last_call
    assert attempts == anyfast_server.request_count() == 2
    asked = [usage_for(body["model"], body["messages"], None, 0)["prompt_tokens"] for body in bodies(anyfast_server)]
    assert usage["prompt_tokens"] == sum(asked)  # the server's own count, 4 characters a token, for each ask
