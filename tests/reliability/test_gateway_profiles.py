"""The client, the hook and a records run against each gateway profile (new-api, one-api, LiteLLM).

Every test counts what is paid where it is paid: requests at the server. The shapes come
from ``airflow_provider_anyfast/testing/profiles.py``; anyfast is the server's own.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import pytest
from pydantic import BaseModel

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.records.engine import RecordEngine, WorkItem
from airflow_provider_anyfast.core.records.plan import RecordsJob
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.runner import RunSpec, run_records
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.sink import MemoryRowSink
from airflow_provider_anyfast.core.records.source import iter_source
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.core.retry import RetryPolicy, suggested_wait
from airflow_provider_anyfast.exceptions import (
    AnyFastBadRequestError,
    AnyFastError,
    AnyFastFilteredOutputError,
    AnyFastModelUnavailableError,
    AnyFastQuotaExhaustedError,
    AnyFastRateLimitError,
    AnyFastRetryWaitTooLongError,
    AnyFastStreamError,
)
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault
from airflow_provider_anyfast.testing.profiles import PROFILES

CHAT = "/v1/chat/completions"
MODEL = "gemini-2.5-flash"
JSON = {"response_format": {"type": "json_object"}}
FAST = RetryPolicy(max_retries=3, max_retry_wait=5.0, backoff_initial=0.01, backoff_max=0.05, rate_limit_budget=1.0)


@pytest.fixture(params=PROFILES)
def gateway(request: pytest.FixtureRequest, anyfast_server: AnyFastTestServer) -> Iterator[AnyFastTestServer]:
    """The local server answering as one gateway."""
    anyfast_server.profile = request.param
    yield anyfast_server


@pytest.fixture
def make_hook(anyfast_server: AnyFastTestServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``make_hook()``: the hook of an ``anyfast_default`` connection to the local server, fast retries."""

    def make() -> AnyFastHook:
        conn = {"conn_type": "anyfast", "host": anyfast_server.base_url, "password": anyfast_server.token,
                "extra": {"max_retry_wait": 5, "backoff_initial": 0.01, "backoff_max": 0.05}}  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_DEFAULT", json.dumps(conn))
        return AnyFastHook()

    return make


def client_of(server: AnyFastTestServer, policy: RetryPolicy = FAST, token: str | None = None) -> AnyFastClient:
    return AnyFastClient(server.base_url, token or server.token, retry=policy, pool_size=8)


def body(text: str, **params: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **JSON, **params}


def records(n: int, prefix: str = "rec") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{i:05d}", "text": f"record {prefix}-{i:05d}"} for i in range(n)]


def spec(model: str = MODEL, concurrency: int = 4, max_tokens: int | None = None) -> RunSpec:
    params = {**JSON, **({"max_tokens": max_tokens} if max_tokens else {})}
    job = RecordsJob(PromptTemplate("Label {{ record.text }}"), ChatRequest(model, params, json_mode=True), "id")
    return RunSpec(job=job, schema=None, settings=RunSettings(max_concurrency=concurrency, max_error_rate=1.0))


def run(server: AnyFastTestServer, items: list[dict[str, Any]], **kwargs: Any) -> dict[str, dict[str, Any]]:
    summary = run_records(client_of(server), spec(**kwargs), lambda: iter_source(items), MemoryRowSink())
    return {row["id"]: row for row in summary["rows"]}


# --- a model name the gateway does not serve --------------------------------------------------


def test_a_model_typo_over_1000_records_sends_no_paid_request(gateway: AnyFastTestServer) -> None:
    with pytest.raises(AnyFastModelUnavailableError, match=r"did you mean 'gemini-2\.5-flash'") as info:
        run(gateway, records(1000), model="gemini-2.5-flsh")
    assert "gemini-2.0-flash" in str(info.value), "it lists the models the token may use"
    assert gateway.request_count(CHAT) == 0 and gateway.request_count("/v1/models") == 1


def test_an_unserved_model_mid_run_stops_after_a_handful(gateway: AnyFastTestServer) -> None:
    """Without the pre-flight check (the engine alone), the first 'model unavailable' stops sending."""
    sink = MemoryRowSink()
    engine = RecordEngine(client_of(gateway), None, sink, RunSettings(max_concurrency=4))
    items = [WorkItem(i, {**body(f"n{i}"), "model": "gemini-9-typo"}, 10) for i in range(1000)]
    counts = engine.run(items)
    assert isinstance(engine.stop_cause, AnyFastModelUnavailableError)
    assert gateway.request_count(CHAT) <= 4, "one request, plus those already in flight"
    assert counts.records == 1000 and counts.success == 0
    kinds = Counter(row["error"]["type"] for row in sink.rows if row["error"])
    assert set(kinds) == {"model_unavailable", "aborted"} and kinds["aborted"] >= 996


def test_a_wrong_key_that_gets_400_everywhere_stops_after_five(anyfast_server: AnyFastTestServer) -> None:
    """LiteLLM without a database answers a wrong key with 400 "No connected db." (the model list too)."""
    anyfast_server.profile = "litellm"
    summary_error = None
    try:
        run_records(client_of(anyfast_server, token="sk-wrong"), spec(concurrency=1),
                    lambda: iter_source(records(1000)), MemoryRowSink())  # fmt: skip
    except AnyFastBadRequestError as exc:
        summary_error = exc
    assert summary_error is not None and "No connected db" in str(summary_error)
    assert anyfast_server.request_count(CHAT) == 5, "the same 400 on the first five records, no success: stop"
    rows = summary_error.summary["rows"]  # type: ignore[attr-defined]
    assert len(rows) == 1000 and Counter(r["error"]["type"] for r in rows) == {"bad_request": 5, "aborted": 995}


def test_a_rejected_token_costs_no_paid_request(gateway: AnyFastTestServer) -> None:
    if gateway.profile == "litellm":
        pytest.skip("LiteLLM answers 400 here: the test above")
    wrong = client_of(gateway, token="sk-wrong")
    with pytest.raises(AnyFastError, match="nothing was sent") as info:
        run_records(wrong, spec(), lambda: iter_source(records(50)), MemoryRowSink())
    assert info.value.status == 401 and gateway.request_count(CHAT) == 0


# --- answers that arrived: paid once, whatever their shape ------------------------------------


@pytest.mark.parametrize("quirk", ["nulls", "parts", "no_usage"])
def test_odd_but_usable_answers_are_successes_paid_once(gateway: AnyFastTestServer, quirk: str) -> None:
    gateway.add_rule("rec-00001", Fault(quirk))
    rows = run(gateway, records(3))
    assert {r["status"] for r in rows.values()} == {"success"}
    odd = rows["rec-00001"]
    assert odd["attempts"] == 1 and odd["output"] == {"answer": "Answer of: Label record rec-00001"}
    assert gateway.request_count(CHAT) == 3
    if quirk == "nulls":
        assert rows["rec-00001"]["usage"]["reasoning_tokens"] == 0 and rows["rec-00001"]["model"] == MODEL


def test_an_error_inside_a_200_is_recorded_once_with_its_message(gateway: AnyFastTestServer) -> None:
    gateway.add_rule("rec-00001", Fault("error_200"))
    rows = run(gateway, records(3))
    bad = rows["rec-00001"]
    assert (bad["status"], bad["attempts"]) == ("invalid_output", 1)
    assert "No candidates returned" in bad["error"]["message"]
    assert gateway.request_count(CHAT) == 3


EXPECTED_BLOCKED = {"anyfast": "filtered", "new-api": "filtered", "litellm": "filtered", "one-api": "invalid_output"}


def test_a_blocked_prompt_is_filtered_and_paid_once(gateway: AnyFastTestServer) -> None:
    """new-api: 400 prompt_blocked; LiteLLM: content_filter with content null; one-api: a 200 error body."""
    gateway.add_rule("rec-00001", Fault("prompt_blocked"))
    rows = run(gateway, records(6))
    assert rows["rec-00001"]["status"] == EXPECTED_BLOCKED[gateway.profile]
    assert rows["rec-00001"]["attempts"] == 1 and gateway.request_count(CHAT) == 6
    assert all(rows[f"rec-{i:05d}"]["status"] == "success" for i in (0, 2, 3, 4, 5)), "the run went on"


@pytest.mark.parametrize("max_tokens", [None, 40])
def test_a_cut_off_answer_is_truncated_even_when_it_says_stop(gateway: AnyFastTestServer, max_tokens: Any) -> None:
    """one-api reports Gemini's MAX_TOKENS as ``stop``: the cut JSON, or all of max_tokens used, tells."""
    gateway.add_rule("rec-00001", Fault("truncated"))
    rows = run(gateway, records(3), max_tokens=max_tokens)
    cut = rows["rec-00001"]
    assert (cut["status"], cut["output"], cut["attempts"]) == ("truncated", None, 1)
    if gateway.profile == "one-api":
        assert cut["finish_reason"] == "stop"


def test_a_403_about_one_request_does_not_stop_the_run(gateway: AnyFastTestServer) -> None:
    gateway.add_rule("rec-00002", Fault("status", status=403))
    rows = run(gateway, records(20))
    assert rows["rec-00002"]["status"] == "error" and rows["rec-00002"]["error"]["type"] == "refused"
    assert sum(r["status"] == "success" for r in rows.values()) == 19
    assert gateway.request_count(CHAT) == 20


def test_an_exhausted_quota_stops_the_run(gateway: AnyFastTestServer) -> None:
    """new-api: 403 insufficient_user_quota; LiteLLM: Gemini's "exceeded your current quota" inside a string."""
    gateway.add_rule("rec-", Fault("rate_limit", code="insufficient_user_quota"))
    with pytest.raises(AnyFastQuotaExhaustedError):
        run_records(client_of(gateway), spec(concurrency=1), lambda: iter_source(records(100)), MemoryRowSink())
    assert gateway.request_count(CHAT) == 1


# --- the hook, plain and streamed --------------------------------------------------------------


def test_the_hook_against_each_profile(gateway: AnyFastTestServer, make_hook: Any) -> None:
    hook = make_hook()
    gateway.add_rule("quirky", Fault("parts"))
    assert hook.chat_completion("a quirky question").text == "Echo: a quirky question"
    assert hook.complete_json("give json") == {"answer": "Answer of: give json"}
    if gateway.profile == "one-api":  # one-api never sends a finish_reason in a stream: the user chooses
        with pytest.raises(AnyFastStreamError, match="require_finish_reason=False"):
            "".join(hook.stream_chat_completion("stream me"))
        stream = hook.stream_chat_completion("stream me", require_finish_reason=False)
    else:
        stream = hook.stream_chat_completion("stream me")
    assert "".join(stream) == "Echo: stream me"
    assert gateway.request_count(CHAT) == 3 + (gateway.profile == "one-api")


def test_a_stream_cut_upstream_is_an_error_with_its_partial_text(gateway: AnyFastTestServer, make_hook: Any) -> None:
    gateway.add_rule("cut", Fault("stream_break"))
    gateway.add_rule("blocked", Fault("filtered"))
    hook = make_hook()
    with pytest.raises(AnyFastStreamError, match="without a finish_reason") as info:
        "".join(hook.stream_chat_completion("cut me off please"))
    assert info.value.partial == "Echo: cut me off please"
    if gateway.profile != "one-api":
        with pytest.raises(AnyFastFilteredOutputError):
            "".join(hook.stream_chat_completion("blocked words"))


# --- hints wherever the gateway puts them ------------------------------------------------------


@pytest.mark.parametrize("shape", ["dict", "list"], ids=["json-string", "bytes-repr"])
def test_litellm_retry_delay_inside_the_message_string(anyfast_server: AnyFastTestServer, shape: str) -> None:
    anyfast_server.profile = "litellm"
    anyfast_server.push_fault(Fault("rate_limit", retry_delay="40s", body_shape=shape), times=6)
    with pytest.raises(AnyFastRetryWaitTooLongError) as info:
        client_of(anyfast_server).chat(body("hi"))
    assert info.value.retry_after == 40.0 and anyfast_server.request_count(CHAT) == 1


def test_litellm_retry_after_header_is_the_wait(anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.profile = "litellm"
    anyfast_server.push_fault(Fault("rate_limit", retry_after=0.3))
    waits: list[float] = []
    result = client_of(anyfast_server, RetryPolicy(backoff_initial=0.01, sleep=waits.append)).chat(body("hi"))
    assert result.attempts == 2 and waits == [0.3]


def test_suggested_wait_reads_every_hint_form() -> None:
    assert suggested_wait(AnyFastRateLimitError("x", retry_after=2.5)) == 2.5
    assert suggested_wait(AnyFastRateLimitError("x", retry_after=0.0)) is None, "Retry-After: 0 is no plan"
    assert suggested_wait(AnyFastRateLimitError("x")) is None
    assert suggested_wait(ValueError("x")) is None


# --- a storm of 429s that outlasts a single request's retries ----------------------------------

STORM = 20.0  # seconds of the client's own (injected) clock


@pytest.mark.parametrize("hint", [1.0, 0.0, None], ids=["hint-1s", "hint-0", "no-hint"])
@pytest.mark.parametrize("profile", ["anyfast", "new-api", "litellm"])
def test_a_20s_rate_limit_storm_ends_with_every_record_answered(
    anyfast_server: AnyFastTestServer, profile: str, hint: float | None
) -> None:
    """Every request gets 429 until a worker has waited 20 s; 20 records, 4 at a time: all answered, no hot loop.

    The waits are counted, not slept (the policy's injected ``sleep``), so the storm is measured
    on the client's clock and the test takes a fraction of a second. new-api drops the hint
    (upstream_error, no Retry-After); LiteLLM sends it as llm_provider-retry-after.
    """
    anyfast_server.profile = profile
    waited: dict[int, float] = {}  # per worker thread: seconds it was told to wait
    said: list[float] = []
    lock = threading.Lock()

    def counted_sleep(seconds: float) -> None:
        with lock:
            said.append(seconds)
            me = threading.get_ident()
            waited[me] = waited.get(me, 0.0) + seconds
            if waited[me] >= STORM:
                anyfast_server.storm(0.0, storm)  # the storm is over once a worker has waited it out

    storm = Fault("rate_limit", retry_after=hint)
    policy = RetryPolicy(sleep=counted_sleep)  # the defaults: 2 min of 429 budget, backoff from 1 s
    anyfast_server.storm(3600.0, storm)
    summary = run_records(client_of(anyfast_server, policy), spec(concurrency=4),
                          lambda: iter_source(records(20)), MemoryRowSink())  # fmt: skip
    assert summary["counts"]["success"] == 20, summary["counts"]
    assert max(waited.values()) >= STORM, "a record waited out 20 s of 429s (max_retries=5 alone spans ~5-15 s)"
    limited = sum(1 for r in anyfast_server.requests if r.status == 429)
    assert min(said) >= 0.5, "no wait below the floor: Retry-After: 0 backs off instead of looping"
    assert limited <= 4 * (STORM / 0.5 + 1), f"{limited} rate-limited requests: a hot loop"


# --- the token, echoed back JSON-escaped ------------------------------------------------------


@pytest.mark.parametrize("profile", ["new-api", "litellm"])
def test_a_token_echoed_json_escaped_never_surfaces(profile: str) -> None:
    """new-api here escapes every '/' as '\\/'; LiteLLM nests it in a JSON string inside a JSON string."""
    token = 'sk-live/abc+def==/"q"'
    escaped = json.dumps(token)[1:-1]
    with AnyFastTestServer(token=token, profile=profile) as server:
        server.add_rule("rec-00001", Fault("server_error", status=502, echo_auth=True))
        server.add_rule("rec-00002", Fault("status", status=400, echo_auth=True))
        client = AnyFastClient(server.base_url, token, retry=FAST)
        summary = run_records(client, spec(concurrency=1), lambda: iter_source(records(4)), MemoryRowSink())
        raw_bodies = [r.fault for r in server.requests]
    text = json.dumps(summary)
    for form in (token, escaped, escaped.replace("/", "\\/"), json.dumps(escaped)[1:-1]):
        assert form not in text, form
    assert summary["counts"]["success"] == 2 and "***" in text and len(raw_bodies) == 1 + 4 + 3


# --- use_json_schema: a schema Gemini accepts, the answer checked against the original --------


class Size(StrEnum):
    small = "small"
    large = "large"


class Part(BaseModel):
    name: str
    size: Size


class Order(BaseModel):
    part: Part
    note: str | None = None
    extras: list[Part] = []


def test_use_json_schema_with_nested_models_and_enums_is_accepted(gateway: AnyFastTestServer, make_hook: Any) -> None:
    assert "$defs" in Order.model_json_schema(), "the case Gemini refuses"
    raw = {"type": "json_schema", "json_schema": {"name": "Order", "schema": Order.model_json_schema()}}
    with pytest.raises(AnyFastBadRequestError, match=r"\$defs"):  # the server refuses as Gemini does
        client_of(gateway).chat({**body("order"), "response_format": raw})
    order = make_hook().complete_json("an order", schema=Order, use_json_schema=True)
    assert isinstance(order, Order) and order.part.size in set(Size)
    assert gateway.request_count(CHAT) == 2, "one refused raw schema, one accepted rewritten one"
