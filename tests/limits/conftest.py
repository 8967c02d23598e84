"""A real redis-server on 127.0.0.1 for the shared-limits tests, started by the tests themselves.

scripts/bootstrap.sh installs Debian's redis-server where it is missing; if it is still
missing the tests fail (they never skip): shared limits are a feature, not an option.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import redis


class RedisProcess:
    """One redis-server process with no persistence, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is not installed: the shared-limits tests need a real one. Run ./scripts/test as root "
                "on Debian (it installs the redis-server package), or install it yourself (apt-get install "
                "redis-server)."
            )
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.dir = tempfile.mkdtemp(prefix="anyfast-redis-")
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--daemonize", "no", "--loglevel", "notice"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        seen = []
        for line in self.proc.stdout:  # wait for the server to say it is ready, not for a fixed time
            seen.append(line)
            if "Ready to accept connections" in line:
                break
        else:
            pytest.fail(f"redis-server did not start: {''.join(seen)[-2000:]}")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    """One redis-server for the session; tests keep apart by key (each uses its own token or scope)."""
    server = RedisProcess()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisProcess) -> Iterator[Any]:
    client = redis_server.client()
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A redis-server of this test alone, which the test may stop."""
    server = RedisProcess()
    yield server
    server.stop()
