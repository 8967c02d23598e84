"""Request validation with the real API's rules, so client-side checks can be tested against it.

Every refusal names the offending field, as the provider's own validation must.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from airflow_provider_anyfast.testing.faults import Reply, api_error

ROLES = frozenset({"system", "user", "assistant"})
_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    # field: (min, max, integer?)
    "max_tokens": (1, None, True),
    "temperature": (0, 2, False),
    "top_p": (0, 1, False),
    "frequency_penalty": (-2, 2, False),
    "presence_penalty": (-2, 2, False),
    "n": (1, None, True),
}
_FORMATS = frozenset({"text", "json_object", "json_schema"})


def bad_request(field: str, problem: str) -> Reply:
    """A 400 in the usual dict shape whose message and ``param`` name ``field``."""
    return api_error(400, f"Invalid value for '{field}': {problem}", err_type="invalid_request_error",
                     code="invalid_value", param=field)  # fmt: skip


def _number_problem(field: str, value: Any) -> str | None:
    low, high, integer = _RANGES[field]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if integer and not isinstance(value, int):
        return "must be an integer"
    if low is not None and value < low:
        return f"must be >= {low}"
    if high is not None and value > high:
        return f"must be <= {high}"
    return None


def _messages_problem(messages: Any) -> tuple[str, str] | None:
    if not isinstance(messages, list) or not messages:
        return "messages", "must be a non-empty list"
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages[{i}]", "must be an object"
        if message.get("role") not in ROLES:
            return f"messages[{i}].role", f"must be one of {sorted(ROLES)}"
        if "content" not in message:
            return f"messages[{i}].content", "is required"
        content = message["content"]
        if not isinstance(content, str | list) and not (content is None and message["role"] == "assistant"):
            return f"messages[{i}].content", "must be a string or a list of parts"
    return None


def validate_chat(body: Any, models: Collection[str]) -> Reply | None:
    """The error reply for an invalid chat request, or None when it is valid."""
    if not isinstance(body, dict):
        return bad_request("body", "must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return bad_request("model", "is required and must be a string")
    if model not in models:
        return api_error(404, f"The model `{model}` does not exist or you do not have access to it.",
                         err_type="invalid_request_error", code="model_not_found", param="model")  # fmt: skip
    problem = _messages_problem(body.get("messages"))
    if problem is not None:
        return bad_request(*problem)
    for field in _RANGES:
        if body.get(field) is not None:
            text = _number_problem(field, body[field])
            if text is not None:
                return bad_request(field, text)
    if (body.get("n") or 1) > 1 and model.startswith("gemini-3"):
        return bad_request("n", "this model supports only n = 1")
    if "stream" in body and not isinstance(body["stream"], bool):
        return bad_request("stream", "must be a boolean")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str | list):
        return bad_request("stop", "must be a string or a list of up to 4 strings")
    if isinstance(stop, list) and (len(stop) > 4 or not all(isinstance(s, str) for s in stop)):
        return bad_request("stop", "must be a string or a list of up to 4 strings")
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") not in _FORMATS):
        return bad_request("response_format", f"type must be one of {sorted(_FORMATS)}")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            return bad_request("response_format.json_schema", "must be an object with a 'schema' object")
        refused = gemini_refuses(spec.get("schema") or {})
        if refused:  # gateways pass the schema to Gemini's responseSchema, which answers 400
            return api_error(400, f"* GenerateContentRequest.generation_config.response_schema: {refused}",
                             err_type="upstream_error", code="400", param="response_format")  # fmt: skip
    return None


def gemini_refuses(schema: Any) -> str | None:
    """What Gemini's ``responseSchema`` refuses in this schema ($defs, $ref, a "null" type), else None."""
    if isinstance(schema, dict):
        for key in ("$defs", "$ref", "definitions"):
            if key in schema:
                return f"unknown field {key!r}"
        if schema.get("type") == "null" or (isinstance(schema.get("type"), list) and "null" in schema["type"]):
            return "type 'null' is not supported"
        return next((found for v in schema.values() if (found := gemini_refuses(v))), None)
    if isinstance(schema, list):
        return next((found for v in schema if (found := gemini_refuses(v))), None)
    return None
