"""The HTTP client: one pooled session, explicit timeouts, errors mapped to classes.

Thread-safe for concurrent calls (requests' Session with a connection pool sized for
the callers); retries live in ``retry.py``, not in the transport. The token is held
in the session's headers only: it is never part of a URL, a repr or an error message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_anyfast import __version__
from airflow_provider_anyfast.core.network import describe_network_error
from airflow_provider_anyfast.core.responses import ChatCompletion, ChatCompletionChunk, assemble_stream
from airflow_provider_anyfast.core.retry import (
    CallHooks,
    RetryPolicy,
    call_with_retries,
    retry_after_from_headers,
)
from airflow_provider_anyfast.core.transport import FastJsonPost
from airflow_provider_anyfast.exceptions import (
    AnyFastConfigError,
    AnyFastConnectionError,
    AnyFastError,
    AnyFastStreamError,
    AnyFastTimeoutError,
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
    """A completion and how many attempts it took (every attempt may be billed)."""

    completion: ChatCompletion
    attempts: int


class ChatStream:
    """Iterate the text deltas of a streamed completion; ``completion`` is set at the end."""

    def __init__(self, chunks: Iterator[ChatCompletionChunk], attempts: int) -> None:
        self._chunks = chunks
        self.attempts = attempts
        self.completion: ChatCompletion | None = None

    def __iter__(self) -> Iterator[str]:
        seen: list[ChatCompletionChunk] = []
        for chunk in self._chunks:
            seen.append(chunk)
            for choice in chunk.choices:
                if choice.delta.content:
                    yield choice.delta.content
        self.completion = assemble_stream(seen)


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
        # user:password in the base URL never goes out: requests would turn it into Basic auth, sent
        # in place of the Bearer token. It stays in base_url only to be shown redacted (***@host).
        parts = urlsplit(self.base_url)
        self._api_base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self._secret = token.strip().encode()  # only to scrub it from error bodies that echo it
        self.timeout = (connect_timeout, read_timeout)
        self.retry = retry or RetryPolicy()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._post = FastJsonPost(self.session, self.timeout)
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token.strip()}",
                "User-Agent": f"airflow-provider-anyfast/{__version__}",
            }
        )

    def __repr__(self) -> str:
        return f"AnyFastClient(base_url={redact_url(self.base_url)!r})"

    def close(self) -> None:
        self.session.close()

    def _url(self, path: str) -> str:
        return f"{self._api_base}/v1/{path}"

    def _send(self, method: str, path: str, body: dict[str, Any] | None, stream: bool = False) -> requests.Response:
        """One HTTP exchange: network failures and error statuses become AnyFast errors."""
        try:
            if method == "POST" and not stream and body is not None:
                response = self._post.post(self._url(path), body)
            else:
                response = self.session.request(method, self._url(path), json=body, timeout=self.timeout, stream=stream)
        except requests.Timeout as exc:
            raise AnyFastTimeoutError(
                f"no answer from {redact_url(self.base_url)} within {self.timeout[1]:g}s ({type(exc).__name__})"
            ) from None
        except requests.RequestException as exc:
            url = redact_url(self.base_url)
            raise AnyFastConnectionError(f"could not reach {url}: {describe_network_error(exc, url)}") from None
        if response.status_code >= 400:
            try:
                content = response.content
            except requests.RequestException:
                content = b""
            # A proxy may echo the request headers in its error page: the token never reaches a message.
            raise error_from_response(
                response.status_code, content.replace(self._secret, b"***"),
                retry_after=retry_after_from_headers(response.headers),
            )  # fmt: skip
        return response

    def chat(self, body: dict[str, Any], hooks: CallHooks | None = None) -> CallResult:
        """POST a (non-streamed) chat completion under the retry policy."""

        def once() -> ChatCompletion:
            response = self._send("POST", "chat/completions", body)
            try:
                return ChatCompletion.model_validate_json(response.content)
            except (ValueError, requests.RequestException) as exc:
                raise AnyFastConnectionError(
                    f"unreadable completion from {redact_url(self.base_url)}: {type(exc).__name__}"
                ) from None

        completion, attempts = call_with_retries(once, self.retry, hooks)
        return CallResult(completion, attempts)

    def stream(self, body: dict[str, Any], hooks: CallHooks | None = None) -> ChatStream:
        """POST with ``stream: true``; retries cover opening the stream, never a half-read one."""
        response, attempts = call_with_retries(
            lambda: self._send("POST", "chat/completions", body, stream=True), self.retry, hooks
        )
        return ChatStream(_read_sse(response), attempts)

    def list_models(self, retry: RetryPolicy | None = None) -> list[dict[str, Any]]:
        """``GET /v1/models``: the models this token may use (costs no tokens)."""
        response, _ = call_with_retries(lambda: self._send("GET", "models", None), retry or self.retry)
        try:
            data = response.json().get("data", [])
        except (ValueError, AttributeError):
            raise AnyFastError("the models list is not JSON: is the base URL an AnyFast endpoint?") from None
        return [m for m in data if isinstance(m, dict)]


def _read_sse(response: requests.Response) -> Iterator[ChatCompletionChunk]:
    """Parse Server-Sent Events until ``[DONE]``; an error event or an early end raises."""
    data_lines: list[str] = []
    try:
        with response:
            for line in response.iter_lines(decode_unicode=False):
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
                yield _parse_event(data)
            if data_lines and "\n".join(data_lines) == "[DONE]":
                return
    except requests.RequestException as exc:
        raise AnyFastStreamError(f"the stream broke off: {type(exc).__name__}") from None
    raise AnyFastStreamError("the stream ended without [DONE]: the answer may be incomplete")


def _parse_event(data: str) -> ChatCompletionChunk:
    try:
        payload = json.loads(data)
    except ValueError:
        raise AnyFastStreamError(f"unreadable stream event: {data[:200]!r}") from None
    if isinstance(payload, dict) and "error" in payload:
        built = error_from_response(500, data)
        raise AnyFastStreamError(f"error event mid-stream: {built.message}", code=built.code, type=built.type)
    return ChatCompletionChunk.model_validate(payload)
