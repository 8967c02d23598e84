"""One error class per failure mode, built from whatever body the server sent.

Every class carries what is known of the failure (HTTP status, the API's error code and
type, its message and request id) so callers can branch on the class and log the
details. Building an error never fails: dict, list-wrapped, Gemini-style, HTML and
plain-text bodies all give a readable message.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow_provider_anyfast.core.outcome import Cost


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
        self.cost = Cost()  # what the call spent before failing: set by the retry loop, added to by re-asks
        self.source = "AnyFast"  # who answered: "the server (host)" for a base URL that is not AnyFast's

    @property
    def attempts(self) -> int:
        """Attempts the failed call made; every one may have been billed."""
        return self.cost.attempts

    @property
    def usage(self) -> dict[str, int] | None:
        """Tokens the failed call used (answers that came back unusable), or None."""
        return self.cost.usage_or_none

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


class AnyFastModelUnavailableError(AnyFastBadRequestError):
    """The server does not serve this model (new-api 503 ``model_not_found``, LiteLLM 400, 404): all records fail."""

    kind: ClassVar[str] = "model_unavailable"


class AnyFastRequestRefusedError(AnyFastError):
    """403 about this one request or the gateway's upstream credentials: not retried, the run goes on."""

    kind: ClassVar[str] = "refused"


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
    """The connection failed or dropped before an answer; retried.

    ``sent`` is False when no connection was made (refused, unknown host, connect
    timeout): the server never saw the request, so that attempt was not billed.
    """

    kind: ClassVar[str] = "connection"

    def __init__(self, message: str, *, sent: bool = True, **details: Any) -> None:
        super().__init__(message, **details)
        self.sent = sent


class AnyFastTimeoutError(AnyFastConnectionError):
    """No answer within the read timeout; retried, and may still be billed."""

    kind: ClassVar[str] = "timeout"


class AnyFastRetryWaitTooLongError(AnyFastError):
    """The server asked us to wait longer than ``max_retry_wait``; we refuse to block."""

    kind: ClassVar[str] = "retry_wait_too_long"


class AnyFastStreamError(AnyFastError):
    """An error event mid-stream, or a stream that ended without ``[DONE]`` or a finish_reason."""

    kind: ClassVar[str] = "stream"

    def __init__(self, message: str, *, partial: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.partial = partial  # the text received before the stream broke


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


class AnyFastPromptBlockedError(AnyFastFilteredOutputError):
    """The gateway refused the prompt itself as blocked (new-api 400 ``prompt_blocked``): a ``filtered`` row."""

    kind: ClassVar[str] = "prompt_blocked"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        for name, value in details.items():
            setattr(self, name, value)


class AnyFastInvalidOutputError(AnyFastOutputError):
    """The answer is empty, not JSON, or does not match the schema, after any re-asks."""

    kind: ClassVar[str] = "invalid_output"


from airflow_provider_anyfast.failures import (  # noqa: E402  (they build the classes above)
    QUOTA_CODES,
    error_from_response,
    gemini_retry_delay,
    parse_error_body,
)

__all__ = ["QUOTA_CODES", "error_from_response", "gemini_retry_delay", "parse_error_body"]
