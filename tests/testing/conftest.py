"""Fixtures for the test-server tests: a fresh server per test and an authorised session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from airflow_provider_anyfast.testing.server import AnyFastTestServer

TOKEN = "sk-secret-test-token-0123456789"

Chat = Callable[..., requests.Response]


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture
def server() -> Iterator[AnyFastTestServer]:
    with AnyFastTestServer(token=TOKEN) as srv:
        yield srv


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as sess:
        sess.headers["Authorization"] = f"Bearer {TOKEN}"
        yield sess


@pytest.fixture
def chat(server: AnyFastTestServer, session: requests.Session) -> Chat:
    """POST a chat request: ``chat("user text", model=..., stream=..., timeout=...)``."""

    def post(text: str = "Hello there, how are you today?", *, timeout: float = 10, **extra: Any) -> requests.Response:
        body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": text}], **extra}
        stream = bool(extra.get("stream"))
        return session.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=timeout, stream=stream)

    return post
