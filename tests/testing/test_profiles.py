"""Gateway profiles of the test server: chosen per server, at run time, or per request."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_anyfast.testing.profiles import PROFILE_HEADER
from airflow_provider_anyfast.testing.server import AnyFastTestServer, Fault

from .conftest import TOKEN, Chat


def unknown_model(server: AnyFastTestServer, session: requests.Session, **headers: str) -> requests.Response:
    body = {"model": "gemini-9", "messages": [{"role": "user", "content": "hi"}]}
    return session.post(f"{server.base_url}/v1/chat/completions", json=body, headers=headers, timeout=10)


def test_profile_per_server_per_request_and_at_run_time(server: AnyFastTestServer, session: requests.Session) -> None:
    assert unknown_model(server, session).status_code == 404  # anyfast: the original shape
    assert unknown_model(server, session, **{PROFILE_HEADER: "new-api"}).json()["error"]["code"] == "model_not_found"
    assert unknown_model(server, session, **{PROFILE_HEADER: "new-api"}).status_code == 503
    answer = session.post(f"{server.base_url}/_control/profile", json={"profile": "litellm"}, timeout=10)
    assert answer.json() == {"ok": True, "profile": "litellm"} and server.profile == "litellm"
    assert "Invalid model name" in unknown_model(server, session).json()["error"]["message"]
    server.reset()
    assert server.profile == "anyfast", "reset restores the server's own profile"
    refused = session.post(f"{server.base_url}/_control/profile", json={"profile": "two-api"}, timeout=10)
    assert refused.status_code == 400 and "new-api" in refused.json()["error"]["message"]
    with pytest.raises(ValueError, match="unknown gateway profile"):
        AnyFastTestServer(profile="two-api")


def test_litellm_nests_gemini_errors_and_moves_the_hint(server: AnyFastTestServer, chat: Chat) -> None:
    server.profile = "litellm"
    server.push_fault(Fault("rate_limit", retry_after=7, retry_delay="7s", body_shape="list"))
    answer = chat()
    assert answer.status_code == 429 and answer.headers["llm_provider-retry-after"] == "7"
    assert "retry-after" not in {k.lower() for k in answer.headers}
    message = answer.json()["error"]["message"]
    assert "VertexAIException - b'{" in message and '"retryDelay": "7s"' in message


def test_one_api_streams_carry_no_finish_reason(server: AnyFastTestServer, chat: Chat) -> None:
    server.profile = "one-api"
    answer = chat(stream=True, stream_options={"include_usage": True})
    events = [line[6:] for line in answer.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    assert events[-1] == "[DONE]" and all(c["model"] == "gemini" for c in chunks)
    assert not any(choice.get("finish_reason") for c in chunks for choice in c["choices"])


def test_a_wrong_key_on_litellm_is_a_400(server: AnyFastTestServer) -> None:
    server.profile = "litellm"
    answer = requests.get(f"{server.base_url}/v1/models", headers={"Authorization": "Bearer sk-no"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["message"] == "No connected db."
    assert TOKEN not in answer.text
