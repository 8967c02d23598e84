"""The HTTP client: one transport, explicit timeouts, errors mapped to classes.

Thread-safe for concurrent calls (``transport.py``'s urllib3 pools, sized for the
callers); retries live in ``retry.py``, not in the transport. The token is held in the
transport's headers only: it is never part of a URL, a repr or an error message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_anyfast import __version__
from airflow_provider_anyfast.core.jsonmode import finish_kind
from airflow_provider_anyfast.core.outcome import Cost
from airflow_provider_anyfast.core.responses import ChatCompletion, ChatCompletionChunk, assemble_stream
from airflow_provider_anyfast.core.retry import (
    CallObserver,
    RetryPolicy,
    call_with_retries,
    retry_after_from_headers,
)
from airflow_provider_anyfast.core.secrets import secret_forms
from airflow_provider_anyfast.core.transport import Reply, Transport
from airflow_provider_anyfast.exceptions import (
    AnyFastConfigError,
    AnyFastError,
    AnyFastFilteredOutputError,
    AnyFastInvalidOutputError,
    AnyFastStreamError,
    error_from_response,
)

DEFAULT_BASE_URL = "https://www.anyfast.ai"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0


def normalize_base_url(value: str | None) -> str:
    """``www.anyfast.ai``, ``https://www.anyfast.ai/v1/`` and the like -> ``https://www.anyfast.ai``."""
    text = (value or "").strip() or DEFAULT_BASE_URL
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in text:
        raise AnyFastConfigError(
            f"base URL {redact_url(text)!r} is not an http(s) URL; set the connection's host to "
            "something like 'https://www.anyfast.ai'"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")).rstrip("/")


def redact_url(url: str) -> str:
    """The URL with any user:password part replaced, for logs and errors."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True, slots=True)
class CallResult:
    """A completion and what getting it cost: attempts (every one may be billed) and the answer's usage."""

    completion: ChatCompletion
    cost: Cost

    @property
    def attempts(self) -> int:
        return self.cost.attempts


class ChatStream:
    """Iterate the text deltas of a streamed completion; ``completion`` is set at the end.

    A stream that ends without a ``finish_reason`` was cut upstream (new-api still sends
    usage and ``[DONE]`` then), so it raises ``AnyFastStreamError`` with the partial text,
    unless ``require_finish_reason=False`` (one-api never sends one). A blocked answer
    raises ``AnyFastFilteredOutputError`` rather than ending as ``''``.
    """

    def __init__(
        self, chunks: Iterator[ChatCompletionChunk], attempts: int, *, require_finish_reason: bool = True
    ) -> None:
        self._chunks = chunks
        self.attempts = attempts
        self.require_finish_reason = require_finish_reason
        self.completion: ChatCompletion | None = None

    def __iter__(self) -> Iterator[str]:
        seen: list[ChatCompletionChunk] = []
        for chunk in self._chunks:
            seen.append(chunk)
            for choice in chunk.choices:
                if choice.delta.content:
                    yield choice.delta.content
        completion = assemble_stream(seen)
        reason = completion.finish_reason
        if reason is None and self.require_finish_reason:
            error = AnyFastStreamError(
                "the stream ended without a finish_reason: the answer is incomplete (cut upstream); the partial "
                "text is in .partial. If your gateway never sends one (one-api), call with "
                "require_finish_reason=False",
                partial=completion.text,
            )
            error.cost = Cost(usage=completion.usage.as_row_usage() if completion.usage else {})
            raise error
        if finish_kind(reason) == "filtered":
            raise AnyFastFilteredOutputError(
                f"the answer was blocked by a safety filter (finish_reason={reason})", raw=completion.text,
                finish_reason=reason,
            )  # fmt: skip
        self.completion = completion


class AnyFastClient:
    """Talks to ``{base_url}/v1``: chat completions (plain or streamed) and the model list."""

    def __init__(
        self,
        base_url: str | None,
        token: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        retry: RetryPolicy | None = None,
        pool_size: int = 16,
    ) -> None:
        if not token or not token.strip():
            raise AnyFastConfigError("no AnyFast API token: set the connection's API token (its password field)")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise AnyFastConfigError("timeouts must be > 0 seconds")
        self.base_url = normalize_base_url(base_url)
        # user:password in the base URL never goes out: it would be sent as Basic auth, in place
        # of the Bearer token. It stays in base_url only to be shown redacted (***@host).
        parts = urlsplit(self.base_url)
        self._api_base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self._secret = token.strip()  # only to scrub it from error bodies that echo it (in any JSON escaping)
        self._secret_forms = secret_forms(self._secret)
        host = parts.hostname or ""
        self.source = "AnyFast" if host == "anyfast.ai" or host.endswith(".anyfast.ai") else f"the server ({host})"
        self.timeout = (connect_timeout, read_timeout)
        self.retry = retry or RetryPolicy()
        headers = {"Authorization": f"Bearer {token.strip()}", "User-Agent": f"airflow-provider-anyfast/{__version__}"}
        self.transport = Transport(
            timeout=self.timeout, pool_size=max(1, pool_size), headers=headers, where=redact_url(self.base_url)
        )

    def __repr__(self) -> str:
        return f"AnyFastClient(base_url={redact_url(self.base_url)!r})"

    def close(self) -> None:
        self.transport.close()

    def _url(self, path: str) -> str:
        return f"{self._api_base}/v1/{path}"

    def _send(self, method: str, path: str, body: dict[str, Any] | None, stream: bool = False) -> Reply:
        """One HTTP exchange: an error status becomes its AnyFast error (network failures already are)."""
        reply = self.transport.request(method, self._url(path), body, stream=stream)
        if reply.status >= 400:
            # A proxy may echo the request headers in its error page: the token never reaches a message.
            raise error_from_response(
                reply.status, self._scrub(reply.data), retry_after=retry_after_from_headers(reply.headers),
                source=self.source, secret=self._secret,
            )  # fmt: skip
        return reply

    def _scrub(self, content: bytes) -> bytes:
        for form in self._secret_forms:
            content = content.replace(form, b"***")
        return content

    def _completion(self, content: bytes) -> ChatCompletion:
        """A 200's completion; an answer that arrived but cannot be used is an output error (never retried)."""
        try:
            payload = json.loads(content)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and payload.get("error") and not payload.get("choices"):
            built = error_from_response(200, self._scrub(content), source=self.source, secret=self._secret)
            message = built.message.split(": ", 1)[-1]
            raise AnyFastInvalidOutputError(f"{self.source} answered 200 with an error: {message}")
        try:
            return ChatCompletion.model_validate(payload)
        except ValueError as exc:
            text = self._scrub(content[:300]).decode("utf-8", "replace")
            raise AnyFastInvalidOutputError(
                f"unreadable completion from {self.source}: {type(exc).__name__}", raw=text
            ) from None

    def chat(self, body: dict[str, Any], observer: CallObserver | None = None) -> CallResult:
        """POST a (non-streamed) chat completion under the retry policy."""
        outcome = call_with_retries(
            lambda: self._completion(self._send("POST", "chat/completions", body).data), self.retry, observer
        )
        usage = outcome.value.usage
        return CallResult(outcome.value, outcome.cost + Cost(usage=usage.as_row_usage() if usage is not None else {}))

    def stream(
        self, body: dict[str, Any], observer: CallObserver | None = None, *, require_finish_reason: bool = True
    ) -> ChatStream:
        """POST with ``stream: true``; retries cover opening the stream, never a half-read one."""
        outcome = call_with_retries(
            lambda: self._send("POST", "chat/completions", body, stream=True), self.retry, observer
        )
        return ChatStream(
            _read_sse(outcome.value, self.source, self._secret), outcome.attempts,
            require_finish_reason=require_finish_reason,
        )  # fmt: skip

    def list_models(self, retry: RetryPolicy | None = None) -> list[dict[str, Any]]:
        """``GET /v1/models``: the models this token may use (costs no tokens)."""
        reply = call_with_retries(lambda: self._send("GET", "models", None), retry or self.retry).value
        try:
            data = reply.json().get("data", [])
        except (ValueError, AttributeError):
            raise AnyFastError("the models list is not JSON: is the base URL an AnyFast endpoint?") from None
        return [m for m in data if isinstance(m, dict)]


def _read_sse(reply: Reply, source: str, secret: str) -> Iterator[ChatCompletionChunk]:
    """Parse Server-Sent Events until ``[DONE]``; an error event, a broken connection or an early end raises."""
    data_lines: list[str] = []
    for line in reply.iter_lines():
        text = line.decode("utf-8", "replace")
        if text.startswith(":"):
            continue
        if text.startswith("data:"):
            data_lines.append(text[5:].lstrip())
            continue
        if text or not data_lines:
            continue
        data, data_lines = "\n".join(data_lines), []
        if data == "[DONE]":
            return
        yield _parse_event(data, source, secret)
    if data_lines and "\n".join(data_lines) == "[DONE]":
        return
    raise AnyFastStreamError("the stream ended without [DONE]: the answer may be incomplete")


def _parse_event(data: str, source: str, secret: str) -> ChatCompletionChunk:
    try:
        payload = json.loads(data)
    except ValueError:
        raise AnyFastStreamError(f"unreadable stream event: {data[:200].replace(secret, '***')!r}") from None
    if isinstance(payload, dict) and payload.get("error"):
        built = error_from_response(500, data, source=source, secret=secret)
        message = built.message.split(": ", 1)[-1]
        raise AnyFastStreamError(f"error event mid-stream: {message}", code=built.code, type=built.type)
    return ChatCompletionChunk.model_validate(payload)
