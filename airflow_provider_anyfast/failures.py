"""What a failure means, wherever the server put it: status, code, type, message, nested JSON.

Gateways relay Gemini's errors in their own wrappers: new-api puts its codes in
``error.code``, LiteLLM puts Gemini's whole error JSON (sometimes as a Python bytes repr
``b'{...}'``) inside ``error.message``. So every layer is read, the facts are pooled, and
the class is chosen from what the failure *means* (model unavailable, quota gone, token
rejected, request refused, rate limited, upstream failure, prompt blocked), because that
decides whether to retry, to stop the run, or to record one row and go on.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_anyfast.exceptions import (
    AnyFastAuthError,
    AnyFastBadRequestError,
    AnyFastError,
    AnyFastModelUnavailableError,
    AnyFastPromptBlockedError,
    AnyFastQuotaExhaustedError,
    AnyFastRateLimitError,
    AnyFastRequestRefusedError,
    AnyFastServerError,
)

QUOTA_CODES = frozenset({"insufficient_quota", "insufficient_user_quota", "pre_consume_token_quota_failed"})
_REQUEST_ID = re.compile(r"request id:\s*([A-Za-z0-9_-]+)")
_MAX_MESSAGE = 500
_DELAY = re.compile(r"""["']?retryDelay["']?\s*:\s*["']([0-9]*\.?[0-9]+)s["']""")
_RETRY_IN = re.compile(r"retry in ([0-9]*\.?[0-9]+)\s*(ms|s)\b", re.IGNORECASE)
_MODEL_TEXT = re.compile(
    r"invalid model name|model_not_found|no available channel for model|model .{0,80}(?:does not exist|not found|"
    r"is not supported|not available)|unknown model|call /v1/models",
    re.IGNORECASE,
)
_TOKEN_TEXT = re.compile(
    r"invalid token|no token provided|api key not valid|invalid api key|incorrect api key|token (?:is )?(?:expired|"
    r"disabled|invalid|exhausted)|authentication|unauthorized",
    re.IGNORECASE,
)
_QUOTA_TEXT = re.compile(r"insufficient (?:user )?quota|balance|credit|billing|exceeded your current quota", re.I)
_BLOCKED_TEXT = re.compile(r"prompt_blocked|blockreason|prompt (?:was )?blocked", re.IGNORECASE)


@dataclass(slots=True)
class ErrorFacts:
    """Everything one error body says, outer wrapper and nested documents pooled."""

    message: str = ""
    codes: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    retry_delay: float | None = None
    per_day: bool = False

    @property
    def code(self) -> str | None:
        return self.codes[0] if self.codes else None

    @property
    def type(self) -> str | None:
        return self.types[0] if self.types else None

    def mentions(self, pattern: re.Pattern[str]) -> bool:
        return any(pattern.search(text) for text in (*self.texts, *self.codes, *self.types))


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _error_object(body: Any) -> Mapping[str, Any] | None:
    """The ``error`` mapping of a dict body or of a list-wrapped (Gemini) body."""
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping):
            return error
        if isinstance(error, str):
            return {"message": error}
    return None


def embedded_json(text: str) -> Any:
    """A JSON document inside a message string (plain, or a Python bytes repr ``b'{...}'``), else None."""
    start = text.find("{")
    if start < 0:
        return None
    if start >= 2 and text[start - 2 : start] in ("b'", 'b"'):
        end = text.rfind(text[start - 1])
        if end > start:
            try:
                text = ast.literal_eval(text[start - 2 : end + 1]).decode("utf-8", "replace")
                start = 0
            except (ValueError, SyntaxError, AttributeError):
                pass
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    return value


def gemini_retry_delay(error: Mapping[str, Any] | None) -> float | None:
    """Seconds from a Gemini ``RetryInfo.retryDelay`` such as ``"26s"`` or ``"0.5s"``."""
    details = error.get("details") if error else None
    if not isinstance(details, list):
        return None
    for detail in details:
        if isinstance(detail, Mapping) and "retryDelay" in detail:
            match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*s?\s*", str(detail["retryDelay"]))
            if match:
                return float(match.group(1))
    return None


def _collect(error: Mapping[str, Any], facts: ErrorFacts, depth: int) -> None:
    for key, target in (("code", facts.codes), ("type", facts.types), ("status", facts.types)):
        value = error.get(key)
        if value not in (None, "") and not isinstance(value, Mapping | list):
            target.append(str(value))
    message = error.get("message")
    text = message if isinstance(message, str) else ("" if message is None else json.dumps(message))
    facts.texts.append(text)
    if facts.retry_delay is None:
        facts.retry_delay = gemini_retry_delay(error)
    details = error.get("details")
    if isinstance(details, list):
        facts.texts.extend(json.dumps(d) for d in details if isinstance(d, Mapping))
        facts.per_day = facts.per_day or any("PerDay" in t for t in facts.texts)
    inner = embedded_json(text) if depth < 3 and "{" in text else None
    inner_error = _error_object(inner)
    if inner_error is not None:
        _collect(inner_error, facts, depth + 1)
        if not facts.message.strip() or facts.message == text:
            inner_message = inner_error.get("message")
            if isinstance(inner_message, str) and inner_message.strip():
                facts.message = f"{text[: text.find('{')].strip()} {inner_message}".strip()


def read_error_body(raw: bytes | str) -> tuple[Mapping[str, Any] | None, ErrorFacts]:
    """The outer error mapping (if the body is JSON) and every fact found in it."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    error = _error_object(body)
    facts = ErrorFacts()
    if error is not None:
        facts.message = str(error.get("message") or error.get("status") or "").strip()
        _collect(error, facts, 0)
    if not facts.message:
        stripped = re.sub(r"<[^>]+>", " ", text)  # an HTML page from a proxy: keep its words
        facts.message = stripped if stripped.strip() else "(empty body)"
        facts.texts.append(facts.message)
    if facts.retry_delay is None:
        facts.retry_delay = _delay_in_text(" ".join(facts.texts))
    facts.message = _truncate(facts.message)
    return error, facts


def _delay_in_text(text: str) -> float | None:
    """A ``retryDelay`` or "Please retry in 26.5s" written in a message string."""
    match = _DELAY.search(text)
    if match:
        return float(match.group(1))
    match = _RETRY_IN.search(text)
    if match:
        value = float(match.group(1))
        return value / 1000.0 if match.group(2).lower() == "ms" else value
    return None


def parse_error_body(raw: bytes | str) -> tuple[Mapping[str, Any] | None, str]:
    """Return the error mapping (if the body is JSON) and a readable message."""
    error, facts = read_error_body(raw)
    return error, facts.message


def classify(status: int, facts: ErrorFacts, hint: float | None) -> type[AnyFastError]:
    """The error class that says what this failure means (and so whether to retry or stop)."""
    codes = {c.lower() for c in facts.codes}
    per_minute = any("PerMinute" in text for text in facts.texts)  # Gemini's QuotaFailure: a window, not a balance
    if codes & QUOTA_CODES or (
        facts.mentions(_QUOTA_TEXT) and status in (402, 403, 429) and (hint is None or facts.per_day) and not per_minute
    ):
        return AnyFastQuotaExhaustedError
    if facts.mentions(_BLOCKED_TEXT):
        return AnyFastPromptBlockedError
    if facts.mentions(_MODEL_TEXT) and status in (400, 403, 404, 503):
        return AnyFastModelUnavailableError
    if status == 401 or (status == 403 and facts.mentions(_TOKEN_TEXT)):
        return AnyFastAuthError
    if status == 403:
        return AnyFastRequestRefusedError
    if status == 429 or (status >= 500 and codes & {"429", "resource_exhausted"}):
        return AnyFastRateLimitError
    if status in (408, 409) or status >= 500:
        return AnyFastServerError
    return AnyFastBadRequestError


def error_from_response(
    status: int,
    body: bytes | str,
    *,
    retry_after: float | None = None,
    source: str = "AnyFast",
    secret: str | None = None,
) -> AnyFastError:
    """Build the right error class for an HTTP error answer; never raises itself.

    ``secret`` is scrubbed from the decoded message too (a body may echo it JSON-escaped).
    """
    try:
        facts = read_error_body(body)[1]
    except Exception:  # pragma: no cover - defensive: building an error must not fail
        facts = ErrorFacts(message="(unreadable body)")
    message = facts.message if not secret else facts.message.replace(secret, "***")
    if retry_after is None:
        retry_after = facts.retry_delay
    cls = classify(status, facts, retry_after)
    match = _REQUEST_ID.search(message)
    exc = cls(
        f"{source} answered HTTP {status}: {message}",
        status=status,
        code=facts.code,
        type=facts.type,
        request_id=match.group(1) if match else None,
        retry_after=retry_after,
    )
    exc.source = source
    return exc
