"""The provider as Airflow's own CLI sees it: the registered hook, its form, the connection test.

One ``airflow`` subprocess runs every command through the CLI's entry point (one import of
Airflow instead of one per command, a few seconds in all); its output is split per command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from airflow_provider_anyfast.compat import AIRFLOW_V3
from airflow_provider_anyfast.testing.server import AnyFastTestServer

TOKEN = "sk-cli-test-token-7d41e0"
WRONG_TOKEN = "sk-not-the-right-one-93c2"
MARK = "@@@ airflow"

_DRIVER = f"""
import json, sys
from airflow.__main__ import main
for argv in json.loads(sys.argv[1]):
    print("\\n{MARK}", *argv, flush=True)
    sys.argv = ["airflow", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    print("\\n{MARK} exit", code, flush=True)
"""


def airflow_cli(commands: Sequence[Sequence[str]], env: dict[str, str]) -> list[tuple[int, str]]:
    """(exit code, output) of each command, run in order in one subprocess."""
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps([list(c) for c in commands])],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sections = done.stdout.split(f"\n{MARK} ")[1:]  # "<argv>\n<output>" then "exit <code>\n" per command
    results = []
    for body, end in zip(sections[0::2], sections[1::2], strict=True):
        results.append((int(end.split()[1]), body.split("\n", 1)[1]))
    assert len(results) == len(commands), done.stdout[-3000:]
    return results


def json_line(output: str) -> Any:
    """The JSON a ``-o json`` command printed (log lines around it skipped)."""
    return json.loads(next(line for line in reversed(output.splitlines()) if line.startswith(("[{", "{"))))


@pytest.fixture
def server() -> Iterator[AnyFastTestServer]:
    with AnyFastTestServer(token=TOKEN) as srv:
        yield srv


def test_the_cli_lists_the_hook_and_tests_connections_usefully(server: AnyFastTestServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
    for conn_id, token in (("ANYFAST_GOOD", TOKEN), ("ANYFAST_BAD", WRONG_TOKEN)):
        conn = {"conn_type": "anyfast", "host": server.base_url, "password": token, "extra": {"max_retries": 0}}
        env[f"AIRFLOW_CONN_{conn_id}"] = json.dumps(conn)
    hooks, behaviours, good, bad = airflow_cli(
        [
            ["providers", "hooks", "-o", "json"],
            ["providers", "behaviours", "-o", "json"],
            ["connections", "test", "anyfast_good"],
            ["connections", "test", "anyfast_bad"],
        ],
        env,
    )

    (hook,) = [h for h in json_line(hooks[1]) if h["connection_type"] == "anyfast"]
    assert hook["class"] == "airflow_provider_anyfast.hooks.anyfast.AnyFastHook"
    assert (hook["package_name"], hook["conn_id_attribute_name"]) == ("airflow-provider-anyfast", "anyfast_conn_id")
    assert {"field_behaviours": "anyfast"} in json_line(behaviours[1])

    assert good[0] == 0 and "Connection success!" in good[1], good[1]
    assert "Connection failed!" in bad[1] and "rejected the API token (HTTP 401)" in bad[1], bad[1]
    assert "API token" in bad[1]  # says where to fix it, in the form's words
    assert bad[0] == (1 if AIRFLOW_V3 else 0)  # 2.11's command exits 0 even when the test fails
    for _, output in (good, bad):
        assert TOKEN not in output and WRONG_TOKEN not in output
    assert server.request_count("/v1/models") == 2
    assert server.request_count("/v1/chat/completions") == 0  # a connection test spends no tokens
