"""The AnyFast test server over real HTTP: auth, validation, answers, streaming, CLI, load."""

from __future__ import annotations

import json
import math
import threading
from enum import StrEnum
from typing import Any

import jsonschema
import pytest
import requests
from pydantic import BaseModel, Field

from airflow_provider_anyfast.testing import AnyFastTestServer, Fault
from airflow_provider_anyfast.testing.server import DEFAULT_MODELS


class Sentiment(StrEnum):
    positive = "positive"
    neutral = "neutral"
    negative = "negative"


class Tag(BaseModel):
    name: str
    weight: float = Field(ge=0, le=1)


class Review(BaseModel):
    summary: str
    sentiment: Sentiment
    stars: int = Field(ge=1, le=5)
    tags: list[Tag] = Field(min_length=1, max_length=3)
    reply: str | None = None


SCHEMA = Review.model_json_schema()
USER_TEXT = "The shoes arrived quickly and fit perfectly, very comfortable for running every morning"


def schema_body(text: str = USER_TEXT, model: str = "gemini-2.5-flash") -> dict[str, Any]:
    system = f"You review products.\nJSON schema:\n{json.dumps(SCHEMA, indent=2)}\nAnswer with JSON only."
    return {
        "model": model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
        "response_format": {"type": "json_object"},
    }


def parse_sse(response: requests.Response) -> tuple[list[str], list[Any]]:
    """(comment lines, data payloads) of a streamed answer; ``[DONE]`` stays a string."""
    comments, data = [], []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith(":"):
            comments.append(line)
        elif line.startswith("data: "):
            payload = line[len("data: ") :]
            data.append(payload if payload == "[DONE]" else json.loads(payload))
    return comments, data


def test_auth_missing_wrong_and_ok(server: AnyFastTestServer, token: str) -> None:
    url = f"{server.base_url}/v1/models"
    missing = requests.get(url, timeout=5)
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    ok = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert missing.status_code == 401 and "No token provided" in missing.json()["error"]["message"]
    assert missing.json()["error"]["type"] == "new_api_error"
    assert wrong.status_code == 401 and "Invalid token" in wrong.json()["error"]["message"]
    assert ok.status_code == 200
    assert [r.auth_ok for r in server.requests] == [False, False, True]
    assert server.request_count("/v1/models") == 3


def test_auth_checked_before_faults(server: AnyFastTestServer, chat: Any) -> None:
    server.push_fault(Fault("rate_limit"))
    anonymous = requests.post(f"{server.base_url}/v1/chat/completions", json={}, timeout=5)
    assert anonymous.status_code == 401
    assert chat().status_code == 429  # the queued fault was not spent on the refused request


def test_models_list(server: AnyFastTestServer, session: requests.Session) -> None:
    body = session.get(f"{server.base_url}/v1/models", timeout=5).json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == list(DEFAULT_MODELS)
    assert body["data"][0] == {
        "id": "gemini-3.1-pro-preview",
        "object": "model",
        "owned_by": "google",
        "supported_endpoint_types": ["openai"],
    }


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"frequency_penalty": -2.5}, "frequency_penalty"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"n": 0}, "n"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"model": None}, "model"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_validation_names_the_field(chat: Any, extra: dict[str, Any], field: str) -> None:
    response = chat(**extra)
    assert response.status_code == 400
    error = response.json()["error"]
    assert f"'{field}'" in error["message"] and error["param"] == field
    assert "(request id: " in error["message"]


def test_unknown_model_and_bad_json(server: AnyFastTestServer, session: requests.Session, chat: Any) -> None:
    missing = chat(model="gpt-9")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    garbage = session.post(f"{server.base_url}/v1/chat/completions", data=b"{not json", timeout=5)
    assert garbage.status_code == 400 and "body" in garbage.json()["error"]["message"]
    assert session.get(f"{server.base_url}/v1/nothing", timeout=5).status_code == 404


def test_json_answer_matches_pydantic_schema_and_is_deterministic(
    server: AnyFastTestServer, session: requests.Session
) -> None:
    url = f"{server.base_url}/v1/chat/completions"
    first = session.post(url, json=schema_body(), timeout=5).json()
    again = session.post(url, json=schema_body(), timeout=5).json()
    other = session.post(url, json=schema_body("Terrible product, broke after one day"), timeout=5).json()
    content = first["choices"][0]["message"]["content"]
    value = json.loads(content)
    jsonschema.validate(value, SCHEMA)
    Review.model_validate(value)
    assert first["id"].startswith("chatcmpl-") and first["object"] == "chat.completion"
    assert first["choices"][0]["finish_reason"] == "stop"
    assert value["summary"] == USER_TEXT  # derived from the record's text (testing/derive.py)
    assert again["choices"][0]["message"]["content"] == content
    assert json.loads(other["choices"][0]["message"]["content"])["summary"].endswith("broke after one day")


def test_json_schema_response_format_and_fallback(server: AnyFastTestServer, session: requests.Session) -> None:
    schema = {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "integer", "minimum": 10}}
    body = {
        "model": "gemini-2.0-flash",
        "messages": [{"role": "user", "content": "count"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "nums", "schema": schema}},
    }
    url = f"{server.base_url}/v1/chat/completions"
    nums = json.loads(session.post(url, json=body, timeout=5).json()["choices"][0]["message"]["content"])
    jsonschema.validate(nums, schema)
    plain = {**body, "response_format": {"type": "json_object"}}
    answer = json.loads(session.post(url, json=plain, timeout=5).json()["choices"][0]["message"]["content"])
    assert answer == {"answer": "Answer of: count"}


def test_text_answer_echoes_and_n_choices(chat: Any) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    body = chat(words, n=2).json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["choices"][0]["message"]["content"] == "Echo: " + " ".join(f"w{i}" for i in range(30))
    assert chat(model="gemini-3-flash-preview", n=2).status_code == 400


def test_usage_reasoning_and_prefix_cache(server: AnyFastTestServer, session: requests.Session) -> None:
    url = f"{server.base_url}/v1/chat/completions"
    pro = session.post(url, json=schema_body(model="gemini-2.5-pro"), timeout=5).json()
    pro_again = session.post(url, json=schema_body("Another record", model="gemini-2.5-pro"), timeout=5).json()
    flash = session.post(url, json=schema_body(model="gemini-2.5-flash"), timeout=5).json()
    usage = pro["usage"]
    chars = sum(len(m["content"]) for m in schema_body()["messages"])
    content = pro["choices"][0]["message"]["content"]
    assert usage["prompt_tokens"] == math.ceil(chars / 4)
    assert usage["completion_tokens"] == math.ceil(len(content) / 4)
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] + 16
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    cached = pro_again["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert 0 < cached <= pro_again["usage"]["prompt_tokens"]
    assert "completion_tokens_details" not in flash["usage"]
    assert flash["usage"]["prompt_tokens_details"]["cached_tokens"] == 0  # the cache is per model


@pytest.mark.parametrize("include_usage", [False, True])
def test_streaming(chat: Any, include_usage: bool) -> None:
    plain = chat("stream me some words please").json()
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    response = chat("stream me some words please", stream=True, **options)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/event-stream"
    comments, data = parse_sse(response)
    assert comments == [": keep-alive"]
    assert data[-1] == "[DONE]"
    chunks = [d for d in data[:-1] if d["choices"]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == plain["choices"][0]["message"]["content"]
    assert len(chunks) >= 4 and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    usage_chunks = [d for d in data[:-1] if not d["choices"]]
    assert len(usage_chunks) == (1 if include_usage else 0)
    if include_usage:
        assert usage_chunks[0]["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"]


def test_stream_error_and_no_done(server: AnyFastTestServer, chat: Any) -> None:
    server.push_fault(Fault("stream_error"))
    server.push_fault(Fault("stream_no_done"))
    _, broken = parse_sse(chat(stream=True))
    assert "error" in broken[-1] and "[DONE]" not in broken
    assert any(d.get("choices") for d in broken[:-1])
    _, unfinished = parse_sse(chat(stream=True, stream_options={"include_usage": True}))
    assert unfinished and "[DONE]" not in unfinished
    assert all(isinstance(d, dict) and "error" not in d for d in unfinished)
    assert chat().status_code == 200  # the next request on a new connection is normal


def test_log_never_contains_the_token(server: AnyFastTestServer, chat: Any, token: str) -> None:
    chat(f"please repeat {token[:4]}")
    requests.get(f"{server.base_url}/v1/models", headers={"Authorization": "Bearer wrong"}, timeout=5)
    control = requests.get(f"{server.base_url}/_control/requests?bodies=1", timeout=5).text
    assert server.request_count(None) == 2
    for text in (repr(server.requests), control, repr(server)):
        assert token not in text and "Authorization" not in text


def test_log_bodies_off_keeps_no_text() -> None:
    with AnyFastTestServer(token="t", log_bodies=False) as srv:
        body = {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "private"}]}
        ok = requests.post(f"{srv.base_url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer t"})
        assert ok.status_code == 200
        (record,) = srv.requests
        assert record.body is None and record.record_text is None and record.status == 200


def test_stop_closes_keep_alive_connections_and_port(token: str) -> None:
    srv = AnyFastTestServer(token=token, latency=0.0).start()
    srv.latency = 0.25
    assert srv.latency == 0.25
    with pytest.raises(ValueError):
        srv.latency = -1
    with requests.Session() as sess:
        sess.headers["Authorization"] = f"Bearer {token}"
        assert sess.get(f"{srv.base_url}/v1/models", timeout=5).status_code == 200
        srv.stop()
        srv.stop()  # idempotent
        with pytest.raises(requests.ConnectionError):
            sess.get(f"{srv.base_url}/v1/models", timeout=5)


def test_128_concurrent_keep_alive_clients() -> None:
    clients, rounds = 128, 2
    barrier = threading.Barrier(clients)
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    with AnyFastTestServer(token="t", latency=0.2) as srv:

        def client() -> None:
            with requests.Session() as sess:
                sess.headers["Authorization"] = "Bearer t"
                try:
                    barrier.wait(timeout=30)
                    for i in range(rounds):
                        body = {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": f"hi {i}"}]}
                        r = sess.post(f"{srv.base_url}/v1/chat/completions", json=body, timeout=30)
                        with lock:
                            statuses.append(r.status_code)
                except Exception as exc:  # any connection error fails the test below
                    with lock:
                        errors.append(exc)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert statuses == [200] * (clients * rounds)
        assert srv.request_count() == clients * rounds
