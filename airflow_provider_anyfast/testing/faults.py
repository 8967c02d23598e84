"""Faults the test server can inject, and the error bodies real gateways send.

Clients must survive every error shape AnyFast and its upstreams produce (dict, Gemini,
list-wrapped Gemini, HTML and plain-text proxy pages), so each one is reproducible here.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, fields
from email.utils import formatdate
from typing import Any

#: Faults answered with an HTTP error status before any answer is produced.
ERROR_KINDS = frozenset({"rate_limit", "server_error", "status"})
#: Faults that alter the content or finish reason of an otherwise normal 200 answer.
CONTENT_KINDS = frozenset(
    {"fence", "prose", "invalid_json", "schema_mismatch", "truncated", "filtered", "filtered_raw", "empty"}
)
#: Faults that reshape a 200's body the way gateways do (nulls, content parts, no usage, an error in a 200).
BODY_KINDS = frozenset({"nulls", "parts", "no_usage", "error_200"})
#: Faults that only make sense for ``stream: true`` (a non-streaming request gets a 500 / normal answer).
STREAM_KINDS = frozenset({"stream_error", "stream_no_done", "stream_break"})
FAULT_KINDS = ERROR_KINDS | CONTENT_KINDS | BODY_KINDS | STREAM_KINDS | {"drop", "slow", "hold", "prompt_blocked"}
BODY_SHAPES = frozenset({"dict", "list", "gemini", "html", "text"})

_REASONS = {
    400: ("Bad request", "invalid_request_error", "bad_request"),
    401: ("Invalid token", "new_api_error", None),
    403: ("Forbidden: the token's quota or IP rule refuses this request", "new_api_error", "forbidden"),
    404: ("Not found", "invalid_request_error", "not_found"),
    408: ("Request timeout", "new_api_error", "request_timeout"),
    409: ("Conflict: the request collided with another one", "new_api_error", "conflict"),
    413: ("Request entity too large", "invalid_request_error", "request_too_large"),
    422: ("Unprocessable entity", "invalid_request_error", "unprocessable_entity"),
    429: ("Rate limit reached for requests, please retry later", "rate_limit_error", "rate_limit_exceeded"),
    500: ("Internal server error", "upstream_error", "internal_error"),
    502: ("Bad gateway: the upstream answered badly", "upstream_error", "bad_gateway"),
    503: ("The model is overloaded. Please try again later.", "upstream_error", "model_overloaded"),
    504: ("Gateway timeout: the upstream did not answer in time", "upstream_error", "gateway_timeout"),
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_QUOTA_CODES = frozenset({"insufficient_quota", "insufficient_user_quota", "pre_consume_token_quota_failed"})


@dataclass(frozen=True)
class Fault:
    """One injected failure; see the module docstring of ``server`` for every kind."""

    kind: str
    status: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    retry_delay: str | None = None
    retry_after_date: bool = False
    code: str | None = None
    body_shape: str = "dict"
    delay: float = 0.0
    echo_auth: bool = False  # an error message that repeats the Authorization header, as careless proxies do

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(FAULT_KINDS)}")
        if self.body_shape not in BODY_SHAPES:
            raise ValueError(f"unknown body_shape {self.body_shape!r}; known: {sorted(BODY_SHAPES)}")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status!r}")
        if self.kind == "server_error" and self.status is not None and self.status < 500:
            raise ValueError(f"server_error needs a 5xx status, got {self.status}")
        if self.delay < 0:
            raise ValueError("delay must be >= 0")

    @property
    def http_status(self) -> int:
        """The status this fault answers with (200 for content faults)."""
        if self.kind == "rate_limit":
            return self.status or 429
        if self.kind == "server_error":
            return self.status or 503
        if self.kind == "status":
            return self.status or 400
        return 200

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from JSON (the ``/_control/faults`` endpoint), refusing unknown keys."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class Reply:
    """A complete HTTP answer: status, extra headers, content type and body bytes."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def request_id() -> str:
    """A fresh request id, the way the gateway appends one to every error message."""
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


def api_error(status: int, message: str, *, err_type: str, code: str | None, param: str = "") -> Reply:
    """The gateway's usual ``{"error": {...}}`` body, with the request id in the message."""
    error = {"message": f"{message} (request id: {request_id()})", "type": err_type, "param": param, "code": code}
    return Reply(status, json.dumps({"error": error}).encode())


def _retry_headers(fault: Fault) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    if fault.retry_after is not None:
        if fault.retry_after_date:
            value = formatdate(time.time() + fault.retry_after, usegmt=True)
        elif float(fault.retry_after).is_integer():
            value = str(int(fault.retry_after))
        else:
            value = str(fault.retry_after)
        headers.append(("Retry-After", value))
    if fault.retry_after_ms is not None:
        headers.append(("retry-after-ms", str(int(fault.retry_after_ms))))
    return tuple(headers)


def _gemini_error(status: int, message: str, retry_delay: str | None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}
    if retry_delay is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
    return {"error": error}


def error_reply(fault: Fault, authorization: str = "") -> Reply:
    """Render an error-status fault (rate_limit, server_error, status) in its body shape."""
    status = fault.http_status
    message, err_type, code = _REASONS.get(status, (f"HTTP {status}", "new_api_error", f"http_{status}"))
    if fault.code is not None:
        code = fault.code
        if fault.code in _QUOTA_CODES:
            message, err_type = "You exceeded your current quota: the token's balance is exhausted", fault.code
    if fault.echo_auth:
        message = f"{message}; request had Authorization: {authorization}"
    headers = _retry_headers(fault)
    shape = fault.body_shape
    if shape == "dict" and fault.retry_delay is not None:
        shape = "gemini"
    if shape == "dict":
        reply = api_error(status, message, err_type=err_type, code=code)
        return Reply(status, reply.body, headers=headers)
    if shape in ("gemini", "list"):
        body: Any = _gemini_error(status, message, fault.retry_delay)
        if shape == "list":
            body = [body]
        return Reply(status, json.dumps(body).encode(), headers=headers)
    title = f"{status} {message}"
    if shape == "html":
        page = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        return Reply(status, page.encode(), "text/html; charset=utf-8", headers)
    return Reply(status, f"{title}\n".encode(), "text/plain; charset=utf-8", headers)
