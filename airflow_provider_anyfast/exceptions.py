"""One error class per failure mode, built from whatever body the server sent.

Every class carries what is known of the failure (HTTP status, the API's error code and
type, its message and request id) so callers can branch on the class and log the
details. Building an error never fails: dict, list-wrapped, Gemini-style, HTML and
plain-text bodies all give a readable message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

QUOTA_CODES = frozenset({"insufficient_quota", "insufficient_user_quota", "pre_consume_token_quota_failed"})
_REQUEST_ID = re.compile(r"request id:\s*([A-Za-z0-9_-]+)")
_MAX_MESSAGE = 500


class AnyFastError(Exception):
    """Base class of every error this provider raises about a call to AnyFast."""

    kind: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.type = type
        self.request_id = request_id
        self.retry_after = retry_after
        self.attempts = 0
        self.usage: dict[str, int] | None = None

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return parts[0] if len(parts) == 1 else f"{parts[0]} ({', '.join(parts[1:])})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class AnyFastParameterError(AnyFastError, ValueError):
    """A request parameter is missing or out of range; raised before anything is sent."""

    kind: ClassVar[str] = "bad_parameter"


class AnyFastConfigError(AnyFastError, ValueError):
    """The connection or operator is configured wrongly (token, base URL, extras)."""

    kind: ClassVar[str] = "config"


class AnyFastAuthError(AnyFastError):
    """401/403: the token is missing, wrong, or not allowed this call."""

    kind: ClassVar[str] = "auth"


class AnyFastBadRequestError(AnyFastError):
    """400/404/413/422: the request itself is wrong; sending it again cannot help."""

    kind: ClassVar[str] = "bad_request"


class AnyFastRateLimitError(AnyFastError):
    """429 rate limit: retried with the server's hint or backoff."""

    kind: ClassVar[str] = "rate_limit"


class AnyFastQuotaExhaustedError(AnyFastError):
    """429/403 quota or balance exhausted: waiting does not help, so never retried."""

    kind: ClassVar[str] = "quota_exhausted"


class AnyFastServerError(AnyFastError):
    """408/409/5xx: the gateway or the model upstream failed; retried."""

    kind: ClassVar[str] = "server_error"


class AnyFastConnectionError(AnyFastError):
    """The connection failed or dropped before an answer; retried."""

    kind: ClassVar[str] = "connection"


class AnyFastTimeoutError(AnyFastConnectionError):
    """No answer within the read timeout; retried, and may still be billed."""

    kind: ClassVar[str] = "timeout"


class AnyFastRetryWaitTooLongError(AnyFastError):
    """The server asked us to wait longer than ``max_retry_wait``; we refuse to block."""

    kind: ClassVar[str] = "retry_wait_too_long"


class AnyFastStreamError(AnyFastError):
    """An error event mid-stream, or a stream that ended without ``[DONE]``."""

    kind: ClassVar[str] = "stream"


class AnyFastOutputError(AnyFastError):
    """The call succeeded but its answer is unusable; carries the raw text."""

    kind: ClassVar[str] = "output"

    def __init__(self, message: str, *, raw: str | None = None, finish_reason: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.finish_reason = finish_reason


class AnyFastTruncatedOutputError(AnyFastOutputError):
    """finish_reason ``length``: the answer was cut off; cut JSON is never repaired."""

    kind: ClassVar[str] = "truncated"


class AnyFastFilteredOutputError(AnyFastOutputError):
    """The answer (or prompt) was blocked by a safety filter."""

    kind: ClassVar[str] = "filtered"


class AnyFastInvalidOutputError(AnyFastOutputError):
    """The answer is empty, not JSON, or does not match the schema, after any re-asks."""

    kind: ClassVar[str] = "invalid_output"


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


def parse_error_body(raw: bytes | str) -> tuple[Mapping[str, Any] | None, str]:
    """Return the error mapping (if the body is JSON) and a readable message."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    error = _error_object(body)
    if error is not None:
        message = str(error.get("message") or error.get("status") or "").strip()
        if message:
            return error, _truncate(message)
    stripped = re.sub(r"<[^>]+>", " ", text)  # an HTML page from a proxy: keep its words
    return error, _truncate(stripped) if stripped.strip() else "(empty body)"


def error_from_response(status: int, body: bytes | str, *, retry_after: float | None = None) -> AnyFastError:
    """Build the right error class for an HTTP error answer; never raises itself."""
    try:
        error, message = parse_error_body(body)
    except Exception:  # pragma: no cover - defensive: building an error must not fail
        error, message = None, "(unreadable body)"
    code = error.get("code") if error else None
    code_text = None if code is None else str(code)
    err_type = error.get("type") or error.get("status") if error else None
    match = _REQUEST_ID.search(message)
    if retry_after is None:
        retry_after = gemini_retry_delay(error)
    cls: type[AnyFastError]
    if code_text in QUOTA_CODES or (status == 429 and "quota" in str(err_type or "").lower()):
        cls = AnyFastQuotaExhaustedError
    elif status in (401, 403):
        cls = AnyFastAuthError
    elif status == 429:
        cls = AnyFastRateLimitError
    elif status in (408, 409) or status >= 500:
        cls = AnyFastServerError
    else:
        cls = AnyFastBadRequestError
    return cls(
        f"AnyFast answered HTTP {status}: {message}",
        status=status,
        code=code_text,
        type=None if err_type is None else str(err_type),
        request_id=match.group(1) if match else None,
        retry_after=retry_after,
    )
