"""JSON mode pieces: finding the JSON in an answer, schemas, instructions, finish reasons."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.completion import check_answer, run_json_request
from airflow_provider_anyfast.core.gemini_schema import gemini_schema
from airflow_provider_anyfast.core.jsonmode import (
    JsonCutOffError,
    OutputSchema,
    extract_json,
    finish_kind,
    reask_messages,
    response_format,
    schema_instructions,
)
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.core.responses import ChatCompletion
from airflow_provider_anyfast.exceptions import (
    AnyFastConfigError,
    AnyFastFilteredOutputError,
    AnyFastInvalidOutputError,
    AnyFastQuotaExhaustedError,
    AnyFastTruncatedOutputError,
)
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault


class Item(BaseModel):
    name: str
    qty: int


ITEM_DICT = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "title": "Named"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2]\n", [1, 2]),
        ('"just a string"', "just a string"),
        ("42", 42),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('Here you go:\n```json\n{"a": [1, {"b": null}]}\n```\nAnything else?', {"a": [1, {"b": None}]}),
        ('Sure! Here is the JSON:\n{"a": "x"}\nHope it helps.', {"a": "x"}),
        ("Result: [true, false] done", [True, False]),
        ('Note {braces} first, then {"a": 2}', {"a": 2}),
        ('{"text": "with ``` inside"}', {"text": "with ``` inside"}),
    ],
)
def test_extract_json(text: str, expected: Any) -> None:
    assert extract_json(text) == expected


@pytest.mark.parametrize("text", ["", "no json here", '{"a": 1', "```json\n{broken\n```", "{'single': 'quotes'}"])
def test_extract_json_refuses_text_without_json(text: str) -> None:
    with pytest.raises(ValueError, match="no valid JSON"):
        extract_json(text)


def test_pydantic_schema() -> None:
    schema = OutputSchema(Item)
    assert schema.name == "Item" and schema.json_schema == Item.model_json_schema()
    value = schema.validate({"name": "bolt", "qty": "3"})
    assert value == Item(name="bolt", qty=3) and schema.to_json(value) == {"name": "bolt", "qty": 3}
    with pytest.raises(ValueError, match="does not match the schema Item") as info:
        schema.validate({"name": 5})
    assert "name:" in str(info.value) and "qty: Field required" in str(info.value)


def test_json_schema_dict() -> None:
    schema = OutputSchema(ITEM_DICT)
    assert schema.name == "Named" and schema.model is None
    assert schema.validate({"name": "x"}) == {"name": "x"} == schema.to_json({"name": "x"})
    with pytest.raises(ValueError, match="does not match the schema Named: \\(root\\): 'name' is a required"):
        schema.validate({})
    with pytest.raises(ValueError, match="name: 3 is not of type 'string'"):
        schema.validate({"name": 3})
    assert OutputSchema({"type": "array"}).name == "output"


@pytest.mark.parametrize("bad", [{"type": "objekt"}, {"properties": 3}, 17, "a string", Item(name="x", qty=1)])
def test_bad_schema_is_a_config_error(bad: Any) -> None:
    with pytest.raises(AnyFastConfigError, match="output_schema"):
        OutputSchema(bad)


def test_coerce() -> None:
    schema = OutputSchema(Item)
    assert OutputSchema.coerce(None) is None and OutputSchema.coerce(schema) is schema
    coerced = OutputSchema.coerce(ITEM_DICT)
    assert coerced is not None and coerced.name == "Named"


def test_instructions_carry_the_schema_compactly() -> None:
    plain = schema_instructions(None)
    assert plain.startswith("Answer with one JSON value only") and "schema" not in plain
    text = schema_instructions(OutputSchema(ITEM_DICT))
    assert text.startswith(plain)
    assert json.loads(text.split("JSON schema:\n", 1)[1]) == ITEM_DICT and ", " not in text.split("\n", 2)[2]


def test_json_messages_put_the_instructions_first() -> None:
    user = {"role": "user", "content": "hi"}
    added = ChatRequest("m", json_mode=True).messages([user])
    assert added[0]["role"] == "system" and added[1] == user and len(added) == 2
    merged = ChatRequest("m", {}, OutputSchema(Item), json_mode=True).messages(
        [{"role": "system", "content": "Be kind."}, user]
    )
    assert len(merged) == 2 and merged[0]["content"].endswith("\n\nBe kind.")
    assert merged[0]["content"].startswith(schema_instructions(OutputSchema(Item)))


def test_response_format() -> None:
    assert response_format(None) == {"type": "json_object"} == response_format(None, use_json_schema=True)
    assert response_format(OutputSchema(Item)) == {"type": "json_object"}
    strict = response_format(OutputSchema(Item), use_json_schema=True)
    sent = {"type": "object", "required": ["name", "qty"],
            "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}}}  # fmt: skip
    assert strict == {"type": "json_schema", "json_schema": {"name": "Item", "schema": sent, "strict": True}}


def test_reask_messages_extend_the_conversation() -> None:
    original = [{"role": "user", "content": "hi"}]
    extended = reask_messages(original, "{oops", "the answer holds no valid JSON value")
    assert extended[0] == original[0] and len(original) == 1
    assert extended[1] == {"role": "assistant", "content": "{oops"}
    assert extended[2]["role"] == "user" and "no valid JSON value" in extended[2]["content"]


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("length", "truncated"),
        ("MAX_TOKENS", "truncated"),
        ("content_filter", "filtered"),
        ("SAFETY", "filtered"),
        ("RECITATION", "filtered"),
        ("PROHIBITED_CONTENT", "filtered"),
        ("stop", None),
        ("STOP", None),
        ("tool_calls", None),
        ("OTHER", None),
        (None, None),
    ],
)
def test_finish_kind(reason: str | None, kind: str | None) -> None:
    assert finish_kind(reason) == kind


def _completion(
    content: str | None, reason: str | None = "stop", usage: dict[str, int] | None = None
) -> ChatCompletion:
    data: dict[str, Any] = {"choices": [{"message": {"content": content}, "finish_reason": reason}]}
    return ChatCompletion.model_validate({**data, "usage": usage} if usage else data)


def test_check_answer() -> None:
    assert check_answer(_completion('```json\n{"name": "a", "qty": 1}\n```'), None) == ({"name": "a", "qty": 1},) * 2
    value, json_value = check_answer(_completion('{"name": "a", "qty": 1}'), OutputSchema(Item))
    assert value == Item(name="a", qty=1) and json_value == {"name": "a", "qty": 1}
    with pytest.raises(AnyFastTruncatedOutputError) as cut:
        check_answer(_completion('{"name": "a", "qty": 1}', "length"), None)  # looks whole; still refused
    assert cut.value.raw == '{"name": "a", "qty": 1}'
    with pytest.raises(AnyFastFilteredOutputError):
        check_answer(_completion(None, "SAFETY"), None)
    with pytest.raises(AnyFastInvalidOutputError, match="empty"):
        check_answer(_completion("  \n", "stop"), None)
    with pytest.raises(ValueError, match="no valid JSON"):
        check_answer(_completion("nope"), None)


def json_request(
    messages: list[dict[str, Any]], params: dict[str, Any], schema: OutputSchema | None = None
) -> dict[str, Any]:
    """A JSON-mode body from the one request builder, as the hook and the records operator build it."""
    return ChatRequest.create(model="gemini-2.5-flash", params=params, schema=schema, json_mode=True).body(messages)


def test_json_request_keeps_a_caller_format() -> None:
    messages = [{"role": "user", "content": "hi"}]
    body = json_request(messages, {"top_p": 0.5})
    assert body["response_format"] == {"type": "json_object"} and body["top_p"] == 0.5
    assert body["messages"][0]["role"] == "system" and messages == [{"role": "user", "content": "hi"}]
    custom = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert json_request(messages, {"response_format": custom})["response_format"] == custom


def test_run_json_request_counts_every_attempt_and_ask(
    anyfast_server: AnyFastTestServer, client: AnyFastClient
) -> None:
    anyfast_server.push_fault(Fault("rate_limit", retry_after=0.01))
    anyfast_server.push_fault(Fault("invalid_json"))
    schema = OutputSchema(ITEM_DICT)
    body = json_request([{"role": "user", "content": "name a tool"}], {}, schema)
    result = run_json_request(client, body, schema)
    assert result.attempts == 3 and anyfast_server.request_count() == 3
    assert isinstance(result.value["name"], str) and result.json_value == result.value
    assert result.usage["total_tokens"] > result.completion.usage.total_tokens  # type: ignore[union-attr]


def test_run_json_request_error_carries_cost(anyfast_server: AnyFastTestServer, client: AnyFastClient) -> None:
    anyfast_server.push_fault(Fault("invalid_json"))
    anyfast_server.push_fault(Fault("rate_limit", code="insufficient_quota"))
    body = json_request([{"role": "user", "content": "x"}], {})
    with pytest.raises(AnyFastQuotaExhaustedError) as info:
        run_json_request(client, body, None)
    assert info.value.attempts == 2 and info.value.usage and info.value.usage["total_tokens"] > 0


@pytest.mark.parametrize(
    "text",
    [
        '{"order": {"id": 7, "items": [{"sku": "a"}], "note": "cut her',
        '{"outer": [{"inner": 2}',
        'x {"a": {"b": 1}, "c"',
    ],
)
def test_a_cut_off_object_never_yields_an_inner_fragment(text: str) -> None:
    """one-api reports a cut as ``stop``: the complete inner ``{...}`` must not pass for the answer."""
    with pytest.raises(JsonCutOffError, match="cut off"):
        extract_json(text)


def test_gemini_schema_inlines_refs_and_marks_optional_fields_nullable() -> None:
    schema = {
        "$defs": {"Part": {"type": "object", "title": "Part", "properties": {"n": {"type": "integer"}}}},
        "type": "object", "additionalProperties": False, "title": "Root",
        "properties": {"part": {"$ref": "#/$defs/Part"}, "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                       "kind": {"const": "x"}, "tags": {"type": ["array", "null"], "items": {"type": "string"}}},
    }  # fmt: skip
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {"part": {"type": "object", "properties": {"n": {"type": "integer"}}},
                       "note": {"type": "string", "nullable": True}, "kind": {"enum": ["x"]},
                       "tags": {"type": "array", "items": {"type": "string"}, "nullable": True}},
    }  # fmt: skip
