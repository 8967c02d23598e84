"""Gateway profiles: answer as new-api, one-api or the LiteLLM proxy do when they relay Gemini.

The server's own shapes were written with our client and share its assumptions; these
profiles copy what the real gateways send (``docs/reliability.md``, "Gateway profiles",
lists the facts), so the suite proves the provider against each. ``anyfast`` is the
server's original behaviour. A profile is chosen per server (``profile=``), at run time
(``/_control/profile``), or per request with the ``X-Test-Gateway-Profile`` header.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_anyfast.testing.answers import Answer
from airflow_provider_anyfast.testing.faults import Fault, Reply, api_error, error_reply, request_id

PROFILES = ("anyfast", "new-api", "one-api", "litellm")
PROFILE_HEADER = "X-Test-Gateway-Profile"
_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                  503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}  # fmt: skip


def check_profile(name: str) -> str:
    """The name, or ValueError listing the known profiles."""
    if name not in PROFILES:
        raise ValueError(f"unknown gateway profile {name!r}; known: {', '.join(PROFILES)}")
    return name


def unknown_model(profile: str, model: str) -> Reply:
    """new-api/one-api: 503 no channel; LiteLLM: 400 "Invalid model name"; anyfast: 404."""
    if profile in ("new-api", "one-api"):
        err_type = "new_api_error" if profile == "new-api" else "one_api_error"
        return api_error(503, f"No available channel for model {model} under group default (distributor)",
                         err_type=err_type, code="model_not_found")  # fmt: skip
    if profile == "litellm":
        message = (f"Invalid model name passed in model={model}. Call `/v1/models` to view available models for "
                   "your key.")  # fmt: skip
        body = {"error": {"message": message, "type": "invalid_request_error", "param": "model", "code": "400"}}
        return Reply(400, json.dumps(body).encode())
    return api_error(404, f"The model `{model}` does not exist or you do not have access to it.",
                     err_type="invalid_request_error", code="model_not_found", param="model")  # fmt: skip


def bad_token(profile: str, message: str) -> Reply:
    """LiteLLM without a database answers a wrong key with 400 "No connected db."; the others 401."""
    if profile == "litellm":
        body = {"error": {"message": "No connected db.", "type": "no_db_connection", "param": "None", "code": "400"}}
        return Reply(400, json.dumps(body).encode())
    return api_error(401, message, err_type="new_api_error", code=None)


def _gemini_json(status: int, message: str, fault: Fault) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}
    details: list[dict[str, Any]] = []
    if status == 429:
        quota_id = "GenerateRequestsPerDayPerProjectPerModel" if fault.code else "GenerateRequestsPerMinutePerModel"
        details.append({"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [{"quotaMetric": "generate_content_requests", "quotaId": quota_id}]})  # fmt: skip
    if fault.retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": fault.retry_delay})
    if details:
        error["details"] = details
    return {"error": error}


def litellm_error(fault: Fault, authorization: str) -> Reply:
    """Gemini's own error JSON as a string in ``error.message``; hints in ``llm_provider-retry-after``."""
    status = fault.http_status
    if status == 503:
        status = 500  # LiteLLM relays an upstream 503 as 500
    if status == 429 and fault.code:
        message = "You exceeded your current quota, please check your plan and billing details."
    elif status == 429:
        message = "Resource has been exhausted (e.g. check quota)."
    elif status == 403:
        message = "Permission denied: the Vertex AI service account lacks aiplatform.endpoints.predict."
    else:
        message = {500: "Internal error encountered.", 400: "Request contains an invalid argument."}.get(
            status, f"HTTP {status}"
        )
    if fault.echo_auth:
        message = f"{message} (request had Authorization: {authorization})"
    gemini = json.dumps(_gemini_json(fault.http_status, message, fault))
    wrapped = f"b'{gemini}'" if fault.body_shape == "list" else gemini  # a Python bytes repr, as LiteLLM logs it
    kind = {429: "RateLimitError", 403: "PermissionDeniedError", 400: "BadRequestError"}.get(
        status, "InternalServerError"
    )
    err_type = {403: "permission_error", 429: "throttling_error"}.get(status, "None")
    body = {"error": {"message": f"litellm.{kind}: litellm.{kind}: VertexAIException - {wrapped}",
                      "type": err_type, "param": None, "code": str(status)}}  # fmt: skip
    headers: list[tuple[str, str]] = [("x-litellm-attempted-retries", "2")]
    if fault.retry_after is not None:
        headers.append(("llm_provider-retry-after", str(fault.retry_after)))
    return Reply(status, json.dumps(body).encode(), headers=tuple(headers))


def new_api_error(fault: Fault, authorization: str) -> Reply:
    """Upstream 429/5xx as ``upstream_error`` with an integer code; no Retry-After, retryDelay dropped."""
    status = fault.http_status
    if fault.code or status not in (429, 500, 502, 503, 504):
        reply = error_reply(Fault(fault.kind, status=403 if status == 429 and fault.code else fault.status,
                                  code=fault.code, echo_auth=fault.echo_auth), authorization)  # fmt: skip
        return Reply(reply.status, reply.body)
    message = f"upstream error: status code {status} (request id: {request_id()})"
    if fault.echo_auth:
        message += f"; request had Authorization: {authorization}"
    body = {"error": {"message": message, "type": "upstream_error", "param": "", "code": status}}
    return Reply(status, json.dumps(body).replace("/", "\\/").encode())  # slashes escaped, as some encoders do


def render_error(profile: str, fault: Fault, authorization: str) -> Reply:
    """An error-status fault in the profile's shape."""
    if profile == "litellm":
        return litellm_error(fault, authorization)
    if profile == "new-api":
        return new_api_error(fault, authorization)
    return error_reply(fault, authorization)


def prompt_blocked(profile: str) -> Reply | Answer:
    """A prompt Gemini blocked: new-api 400 ``prompt_blocked``; one-api a 200 error; LiteLLM ``content_filter``."""
    if profile == "new-api":
        return api_error(400, "prompt blocked by Gemini: SAFETY", err_type="prompt_blocked", code="prompt_blocked")
    if profile == "one-api":
        return Reply(200, json.dumps({"error": "No candidates returned"}).encode())
    if profile == "litellm":
        return Answer(None, "content_filter")
    return Answer("", "content_filter")


def reshape_answer(profile: str, answer: Answer, max_tokens: int | None) -> Answer:
    """one-api says ``stop`` for any answer with text (a cut one too), and a raw Gemini reason for none."""
    if profile == "one-api":
        if answer.content:
            return Answer(answer.content, "stop")
        raw = {"length": "MAX_TOKENS", "content_filter": "SAFETY"}.get(answer.finish_reason, answer.finish_reason)
        return Answer(answer.content, raw)
    if profile == "litellm" and answer.finish_reason == "content_filter":
        return Answer(None, "content_filter")
    return answer


def reshape_body(profile: str, data: dict[str, Any], quirks: set[str]) -> dict[str, Any]:
    """Nulls and content parts the gateways send (``quirks`` from the fault), on a completion body."""
    if "nulls" in quirks:
        data["id"] = None
        data["model"] = None
        usage = data.get("usage") or {}
        usage["completion_tokens_details"] = {"reasoning_tokens": None}
        usage["prompt_tokens_details"] = None
    if "parts" in quirks:
        for choice in data["choices"]:
            text = choice["message"].get("content")
            choice["message"]["content"] = [{"type": "text", "text": text}] if text else []
    if "no_usage" in quirks:
        data.pop("usage", None)
    return data


def stream_for_profile(profile: str, events: list[Any], broken: bool) -> list[Any]:
    """one-api: no finish_reason ever, ``"model": "gemini"``; a broken stream keeps usage and ``[DONE]``."""
    out: list[Any] = []
    for event in events:
        if isinstance(event, dict):
            choices = event.get("choices") or []
            finishing = [c for c in choices if c.get("finish_reason")]
            if finishing and (broken or profile == "one-api"):
                if not any(c.get("delta") for c in finishing):
                    continue  # new-api's separate finish chunk: gone
                event = {**event, "choices": [{**c, "finish_reason": None} for c in choices]}
            if profile == "one-api":
                event = {**event, "model": "gemini"}
        out.append(event)
    return out
