"""Fixtures for the hook tests: ``anyfast`` connections (env vars) pointing at the local server."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.testing.server import AnyFastTestServer

#: Extras that keep retries fast: connection extras cannot otherwise shrink the backoff.
FAST_EXTRAS = {"max_retry_wait": 5, "backoff_initial": 0.01, "backoff_max": 0.05}

MakeHook = Callable[..., AnyFastHook]


@pytest.fixture
def make_hook(anyfast_server: AnyFastTestServer, monkeypatch: pytest.MonkeyPatch) -> MakeHook:
    """``make_hook(conn_id="anyfast_default", extra={...}, **fields)``: a JSON env-var connection and its hook.

    Defaults: host = the local server, password = its token, fast-retry extras (overridable).
    """

    def make(conn_id: str = "anyfast_default", *, extra: dict[str, Any] | None = None, **fields: Any) -> AnyFastHook:
        conn: dict[str, Any] = {
            "conn_type": "anyfast",
            "host": anyfast_server.base_url,
            "password": anyfast_server.token,
        }
        conn.update(fields)
        conn["extra"] = {**FAST_EXTRAS, **(extra or {})}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return AnyFastHook(anyfast_conn_id=conn_id)

    return make


@pytest.fixture
def hook(make_hook: MakeHook) -> AnyFastHook:
    """The hook of ``anyfast_default`` on the local server, with fast retries."""
    return make_hook()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
