"""Fixtures for the client-core tests: a client of the local server with tiny backoff."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.retry import RetryPolicy
from airflow_provider_anyfast.testing.server import AnyFastTestServer


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """3 retries, backoff of at most 0.05 s, server hints up to 5 s accepted."""
    return RetryPolicy(max_retries=3, max_retry_wait=5.0, backoff_initial=0.01, backoff_max=0.05)


@pytest.fixture
def client(anyfast_server: AnyFastTestServer, fast_retry: RetryPolicy) -> Iterator[AnyFastClient]:
    """A client of the local server under ``fast_retry``."""
    made = AnyFastClient(anyfast_server.base_url, anyfast_server.token, read_timeout=10.0, retry=fast_retry)
    yield made
    made.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
