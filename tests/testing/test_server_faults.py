"""Fault injection of the AnyFast test server, observed over real HTTP."""

from __future__ import annotations

import email.utils
import json
from collections import Counter
from typing import Any

import pytest
import requests

from airflow_provider_anyfast.testing import AnyFastTestServer, Fault
from airflow_provider_anyfast.testing.state import ServerState

SCHEMA = {
    "type": "object",
    "properties": {"category": {"type": "string"}, "price": {"type": "number"}},
    "required": ["category", "price"],
}


def json_chat(chat: Any, **extra: Any) -> requests.Response:
    text = f"Classify this item. JSON schema:\n{json.dumps(SCHEMA)}\nItem: red running shoes"
    return chat(text, response_format={"type": "json_object"}, **extra)


def test_rate_limit_retry_hints(server: AnyFastTestServer, chat: Any) -> None:
    server.push_fault(Fault("rate_limit", retry_after=3, retry_after_ms=2500))
    server.push_fault(Fault("rate_limit", retry_after=30, retry_after_date=True))
    server.push_fault(Fault("rate_limit", retry_delay="0.5s"))
    server.push_fault(Fault("rate_limit", code="insufficient_quota"))
    seconds = chat()
    assert seconds.status_code == 429
    assert seconds.headers["Retry-After"] == "3" and seconds.headers["retry-after-ms"] == "2500"
    assert seconds.json()["error"]["code"] == "rate_limit_exceeded"
    dated = chat()
    when = email.utils.parsedate_to_datetime(dated.headers["Retry-After"])
    sent = email.utils.parsedate_to_datetime(dated.headers["Date"])  # the server's clock, not this machine's speed
    assert 29 <= (when - sent).total_seconds() <= 31
    gemini = chat().json()["error"]
    assert gemini["status"] == "RESOURCE_EXHAUSTED" and gemini["code"] == 429
    assert gemini["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.5s"}]
    quota = chat()
    assert quota.status_code == 429 and "Retry-After" not in quota.headers
    assert quota.json()["error"]["code"] == "insufficient_quota"


@pytest.mark.parametrize(("status", "expected"), [(None, 503), (500, 500), (502, 502), (504, 504)])
def test_server_error_statuses(server: AnyFastTestServer, chat: Any, status: int | None, expected: int) -> None:
    server.push_fault(Fault("server_error", status=status))
    response = chat()
    assert response.status_code == expected and "request id" in response.json()["error"]["message"]
    assert server.requests[-1].fault == "server_error" and server.requests[-1].status == expected


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 413, 422])
def test_status_fault_dict_shape(server: AnyFastTestServer, chat: Any, status: int) -> None:
    server.push_fault(Fault("status", status=status))
    response = chat()
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_status_fault_body_shapes(server: AnyFastTestServer, chat: Any) -> None:
    for shape in ("list", "gemini", "html", "text"):
        server.push_fault(Fault("status", status=502, body_shape=shape))
    listed, gemini, html, text = chat(), chat(), chat(), chat()
    assert listed.json()[0]["error"]["status"] == "UNAVAILABLE" and listed.json()[0]["error"]["code"] == 502
    assert gemini.json()["error"]["code"] == 502
    assert html.headers["Content-Type"].startswith("text/html") and "<html>" in html.text
    assert text.headers["Content-Type"].startswith("text/plain") and text.text.startswith("502 ")
    assert all(r.status_code == 502 and "Content-Length" in r.headers for r in (listed, gemini, html, text))


def test_drop_closes_without_answer(server: AnyFastTestServer, chat: Any) -> None:
    server.push_fault(Fault("drop"))
    with pytest.raises(requests.ConnectionError):
        chat()
    assert chat().status_code == 200
    assert [(r.status, r.fault) for r in server.requests] == [(0, "drop"), (200, None)]


def test_slow_exceeds_read_timeout_without_blocking_others(server: AnyFastTestServer, chat: Any) -> None:
    server.push_fault(Fault("slow", delay=2.0))
    with pytest.raises(requests.ReadTimeout):
        chat(timeout=0.3)
    assert chat(timeout=5).status_code == 200  # another connection is served meanwhile


@pytest.mark.parametrize(
    ("kind", "finish", "check"),
    [
        ("fence", "stop", lambda c: c.startswith("```json\n") and json.loads(c[8:-4])["category"]),
        ("prose", "stop", lambda c: not c.startswith("{") and json.loads(c[c.index("{") : c.rindex("}") + 1])),
        ("schema_mismatch", "stop", lambda c: json.loads(c) == {"unexpected": True}),
        ("empty", "stop", lambda c: c == ""),
        ("filtered", "content_filter", lambda c: c == ""),
        ("filtered_raw", "SAFETY", lambda c: c is None),
    ],
)
def test_content_faults(server: AnyFastTestServer, chat: Any, kind: str, finish: str, check: Any) -> None:
    server.push_fault(Fault(kind))
    choice = json_chat(chat).json()["choices"][0]
    assert choice["finish_reason"] == finish
    assert check(choice["message"]["content"])


@pytest.mark.parametrize(("kind", "finish"), [("invalid_json", "stop"), ("truncated", "length")])
def test_broken_json_faults(server: AnyFastTestServer, chat: Any, kind: str, finish: str) -> None:
    whole = json_chat(chat).json()["choices"][0]["message"]["content"]
    server.push_fault(Fault(kind))
    choice = json_chat(chat).json()["choices"][0]
    assert choice["finish_reason"] == finish
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice["message"]["content"])
    if kind == "truncated":
        assert whole.startswith(choice["message"]["content"])


def test_precedence_rules_then_queue_then_random(server: AnyFastTestServer, chat: Any) -> None:
    server.set_random_faults({"server_error": 1.0}, seed=3)
    server.push_fault(Fault("status", status=409), times=2)
    server.add_rule(contains="FAULT-429", fault=Fault("rate_limit"), times=1)
    statuses = [chat("x FAULT-429 y").status_code, chat("FAULT-429").status_code, chat().status_code, chat()]
    assert statuses[:3] == [429, 409, 409] and statuses[3].status_code == 503
    assert [r.fault for r in server.requests] == ["rate_limit", "status", "status", "server_error"]
    server.reset()
    assert chat().status_code == 200 and server.request_count() == 1


def test_rule_without_limit_matches_system_text(server: AnyFastTestServer, session: requests.Session) -> None:
    server.add_rule(contains="BLOCKME", fault=Fault("filtered"))
    body = {
        "model": "gemini-2.5-flash",
        "messages": [{"role": "system", "content": "BLOCKME"}, {"role": "user", "content": "hello"}],
    }
    url = f"{server.base_url}/v1/chat/completions"
    reasons = [session.post(url, json=body, timeout=5).json()["choices"][0]["finish_reason"] for _ in range(3)]
    assert reasons == ["content_filter"] * 3


def test_random_fault_rates_follow_configuration() -> None:
    state = ServerState()
    state.set_random_faults({"rate_limit": 0.1, "server_error": 0.05, "drop": 0.02}, seed=1)
    counts = Counter(f.kind if f else None for f in (state.choose_fault("x") for _ in range(2000)))
    assert 150 <= counts["rate_limit"] <= 250
    assert 60 <= counts["server_error"] <= 140
    assert 15 <= counts["drop"] <= 70
    assert 1500 <= counts[None] <= 1800
    again = ServerState()
    again.set_random_faults({"rate_limit": 0.1, "server_error": 0.05, "drop": 0.02}, seed=1)
    replay = Counter(f.kind if f else None for f in (again.choose_fault("x") for _ in range(2000)))
    assert replay == counts  # seeded: deterministic


def test_random_faults_over_http(server: AnyFastTestServer, chat: Any) -> None:
    server.set_random_faults({"rate_limit": 0.3, "server_error": 0.2}, seed=7)
    statuses = Counter(chat().status_code for _ in range(200))
    assert set(statuses) == {200, 429, 503}
    assert 30 <= statuses[429] <= 90 and 15 <= statuses[503] <= 65


@pytest.mark.parametrize(
    "bad",
    [{"kind": "explode"}, {"kind": "status", "body_shape": "xml"}, {"kind": "server_error", "status": 404}],
)
def test_invalid_faults_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Fault.from_dict(bad)
    with pytest.raises(ValueError):
        ServerState().set_random_faults({"rate_limit": 0.7, "server_error": 0.5})
