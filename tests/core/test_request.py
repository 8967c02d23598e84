"""The one request builder: the hook's call and a records run send the same body, and keys stay put."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.completion import run_json_request
from airflow_provider_anyfast.core.jsonmode import OutputSchema, schema_instructions
from airflow_provider_anyfast.core.records.plan import RecordsJob, check_records, work
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.reuse import request_key
from airflow_provider_anyfast.core.records.source import iter_source
from airflow_provider_anyfast.core.request import ChatRequest, reask_body
from airflow_provider_anyfast.exceptions import AnyFastParameterError
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

RECORD = {"id": "a", "text": "printer on fire ☃"}
#: Request keys and the resume fingerprint of this job, as the code before the one builder made them:
#: an answer cache or an output folder written then must keep hitting and resuming.
PINNED = {
    False: (
        "c18e659b4a5613c6c0765db741614c0bc9e1a4b671479759cf8761f74cb5c0ae",
        "7ea20fd860fdc549151256c41595cfccf52a84e125d8307a28f913be76a7526c",
    ),
    True: (
        "55495bf366875b77c329b42a6f81521b9d6e09516c228e47977ee13b5e7fc1d7",
        "8f7ddb0fe2199a6c4d2a51bb11894f1f1b7bd803a646c145e9e3cb0a8a33ebe9",
    ),
}


class Label(BaseModel):
    label: str
    confidence: float


def records_job(use_json_schema: bool = False) -> RecordsJob:
    request = ChatRequest.create(
        model="gemini-2.5-flash", params={"temperature": 0, "max_tokens": 64}, schema=OutputSchema(Label),
        json_mode=True, use_json_schema=use_json_schema,
    )  # fmt: skip
    template = PromptTemplate("Label this ticket: {{ record.text }}", context={"ds": "2024-01-01"})
    return RecordsJob(template=template, request=request, id_field="id", system_prompt="You label tickets.")


@pytest.mark.parametrize("use_json_schema", [False, True])
def test_request_keys_and_fingerprints_are_byte_for_byte_those_of_before(use_json_schema: bool) -> None:
    job = records_job(use_json_schema)
    keys: set[str] = set()
    checked = check_records(job, iter_source([RECORD]), keys)
    (item,) = work(job, iter_source([RECORD]))
    key, fingerprint = PINNED[use_json_schema]
    assert request_key(item.body) == key  # type: ignore[union-attr]
    assert keys == {key}
    assert checked.fingerprint == fingerprint


def test_a_record_and_a_single_call_send_the_same_body(anyfast_server: AnyFastTestServer) -> None:
    """The hook's JSON call and a records run build with one builder: same text, same request at the server."""
    job = records_job()
    (item,) = work(job, iter_source([RECORD]))
    single = job.request.body(
        [{"role": "system", "content": "You label tickets."}, {"role": "user", "content": job.template.render(RECORD)}]
    )
    assert single == item.body  # type: ignore[union-attr]
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token)
    try:
        run_json_request(client, single, job.request.schema)
        run_json_request(client, item.body, job.request.schema)  # type: ignore[union-attr]
    finally:
        client.close()
    first, second = (r.body for r in anyfast_server.requests if r.path == "/v1/chat/completions")
    assert first == second
    system = first["messages"][0]["content"]
    assert system == f"{schema_instructions(OutputSchema(Label))}\n\nYou label tickets."
    assert first["response_format"] == {"type": "json_object"} and first["temperature"] == 0


def test_a_reask_is_the_same_request_with_the_conversation_extended(anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.push_fault(Fault("invalid_json"))
    body = ChatRequest.create(model="gemini-2.5-flash", params={"seed": 7}, json_mode=True).body(
        [{"role": "user", "content": "name a tool"}]
    )
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token)
    try:
        run_json_request(client, body, None)
    finally:
        client.close()
    first, second = (r.body for r in anyfast_server.requests if r.path == "/v1/chat/completions")
    assert second["seed"] == 7 and second["response_format"] == first["response_format"]
    assert second["messages"][: len(first["messages"])] == first["messages"]
    assert [m["role"] for m in second["messages"][-2:]] == ["assistant", "user"]
    assert reask_body(first, "x", "bad")["messages"][-2] == {"role": "assistant", "content": "x"}


def test_plain_mode_adds_no_instructions_and_streaming_asks_for_usage() -> None:
    request = ChatRequest.create(model="gemini-2.5-flash", params={"temperature": 0.5})
    body = request.body([{"role": "user", "content": "hi"}], stream=True)
    assert body["messages"] == [{"role": "user", "content": "hi"}] and "response_format" not in body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("params", "match"),
    [({"temperature": 9}, "'temperature' must be <= 2"), ({"stream": True}, "stream_"), ({"model": "x"}, "'model'")],
)
def test_create_checks_every_parameter_before_a_body_exists(params: dict[str, Any], match: str) -> None:
    with pytest.raises(AnyFastParameterError, match=match):
        ChatRequest.create(model="gemini-2.5-flash", params=params)


def test_messages_given_by_a_caller_are_checked() -> None:
    with pytest.raises(AnyFastParameterError, match="messages"):
        ChatRequest.create(model="gemini-2.5-flash", params={}).body([{"role": "robot", "content": "x"}])
