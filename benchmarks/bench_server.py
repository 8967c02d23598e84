"""The local AnyFast-compatible server in its own process, driven over ``/_control/``.

A separate process keeps the server's CPU out of the client's process time, and lets the
benchmark read the server's own CPU (to tell when the server, not the client, is the limit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from types import TracebackType
from typing import Any

import psutil

TOKEN = "sk-bench-token-0123456789"
_LISTENING = "listening on "


class ServerProcess:
    """``python -m airflow_provider_anyfast.testing.server`` on a free 127.0.0.1 port."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.base_url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._ps: psutil.Process | None = None

    def start(self) -> ServerProcess:
        cmd = [
            sys.executable, "-m", "airflow_provider_anyfast.testing.server", "--host", "127.0.0.1", "--port", "0",
            "--token", TOKEN, "--latency", str(self.latency), "--no-log-bodies",
        ]  # fmt: skip
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if _LISTENING not in line:
            self.stop()
            raise RuntimeError(f"the test server did not start: {line!r}")
        self.base_url = line.split(_LISTENING, 1)[1].strip()
        self._ps = psutil.Process(self._proc.pid)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}/_control/{path}", data=data, method=method)
        handler = urllib.request.ProxyHandler({})  # never through a proxy: 127.0.0.1 only
        with urllib.request.build_opener(handler).open(request, timeout=60) as response:
            return json.loads(response.read())

    def reset(self, latency: float | None = None) -> None:
        """Clear the request log and prefix cache; set a new latency if given."""
        self._control("POST", "reset", {})
        if latency is not None:
            self._control("POST", "faults", {"latency": latency})
            self.latency = latency

    def requests(self) -> list[dict[str, Any]]:
        """The server's request log (arrival times on the server's monotonic clock)."""
        data = self._control("GET", "requests")
        return list(data["requests"])

    def chat_count(self) -> int:
        return sum(1 for r in self.requests() if r["path"] == "/v1/chat/completions")

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far."""
        assert self._ps is not None, "server not started"
        times = self._ps.cpu_times()
        return float(times.user + times.system)


def connection_env(base_url: str) -> dict[str, str]:
    """Environment for an ``anyfast_default`` Airflow connection to the local server."""
    conn = {"conn_type": "anyfast", "host": base_url, "password": TOKEN, "extra": {"max_retry_wait": 5}}
    return {"AIRFLOW_CONN_ANYFAST_DEFAULT": json.dumps(conn), "NO_PROXY": "127.0.0.1,localhost"}
