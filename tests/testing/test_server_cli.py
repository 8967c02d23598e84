"""The test server as a subprocess (``python -m ...server``), driven through ``/_control/``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

import airflow_provider_anyfast


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "airflow_provider_anyfast.testing.server", "--port", "0", *args]
    root = str(Path(airflow_provider_anyfast.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("AnyFast test server listening on http://127.0.0.1:"), line
    return proc, line.rsplit(" ", 1)[1].strip()


def test_cli_and_control_endpoints() -> None:
    proc, base = _start_cli("--token", "cli-token", "--random-fault", "server_error=0")
    try:
        auth = {"Authorization": "Bearer cli-token"}
        url = f"{base}/v1/chat/completions"
        plan = {
            "push": [{"fault": {"kind": "status", "status": 403, "body_shape": "text"}, "times": 1}],
            "rules": [{"contains": "FAULT-429", "fault": {"kind": "rate_limit", "retry_after": 7}, "times": None}],
            "latency": 0.0,
        }
        assert requests.post(f"{base}/_control/faults", json=plan, timeout=5).json() == {"ok": True}
        bad = requests.post(f"{base}/_control/faults", json={"push": [{"fault": {"kind": "nope"}}]}, timeout=5)
        assert bad.status_code == 400
        body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "FAULT-429 please"}]}
        limited = requests.post(url, json=body, headers=auth, timeout=5)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
        assert requests.post(url, json={**body, "messages": [{"role": "user", "content": "hi"}]}, headers=auth).text
        log = requests.get(f"{base}/_control/requests", timeout=5).json()
        assert log["count"] == 2
        assert [(r["status"], r["fault"]) for r in log["requests"]] == [(429, "rate_limit"), (403, "status")]
        assert log["requests"][0]["record_text"] == "FAULT-429 please" and "body" not in log["requests"][0]
        with_bodies = requests.get(f"{base}/_control/requests?bodies=1", timeout=5).json()
        assert with_bodies["requests"][0]["body"]["model"] == "gemini-2.5-flash"
        assert "cli-token" not in json.dumps(with_bodies)
        assert requests.post(f"{base}/_control/reset", timeout=5).json() == {"ok": True}
        assert requests.get(f"{base}/_control/requests", timeout=5).json()["count"] == 0
        assert requests.post(url, json=body, headers=auth, timeout=5).status_code == 200  # rules cleared
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert stderr == ""  # no per-request logging


def test_cli_stops_on_sigint() -> None:
    proc, base = _start_cli()
    assert requests.get(f"{base}/v1/models", headers={"Authorization": "Bearer test-token"}, timeout=5).ok
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 0
