"""Records runs seen from outside: OpenLineage events in a file, StatsD metrics on a UDP socket.

Airflow sets up its lineage listener and its Stats client once per process, from the
configuration it reads at start, so each scenario runs ``airflow dags test`` in its own
subprocess with its own AIRFLOW_HOME and settings (as a deployment would), against the
local AnyFast server; the test then reads what arrived: the event file, the datagrams.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.compat import AIRFLOW_V3
from airflow_provider_anyfast.testing.faults import Fault
from airflow_provider_anyfast.testing.server import AnyFastTestServer

TOKEN = "sk-observability-test-9b1e47"
MODEL = "gemini-2.5-flash"
PRICES = {MODEL: {"input": 0.3, "output": 2.5}}
SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["spam", "ham"]}, "score": {"type": "number"}},
    "required": ["label", "score"],
}
MARK = "@@@ airflow"

DAGS = """
from __future__ import annotations

import pendulum
from airflow_provider_anyfast.operators.anyfast import AnyFastChatOperator, AnyFastRecordsOperator

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task
    from airflow.models.dag import DAG

START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("obs_storage", schedule=None, start_date=START):
    AnyFastRecordsOperator(
        task_id="classify", records=INPUT, output_path=OUTPUT, prompt="Classify: {{ record.text }}",
        output_schema=SCHEMA, model=MODEL, prices=PRICES, id_field="id", max_concurrency=1,
    )

with DAG("obs_xcom_fails", schedule=None, start_date=START):

    @task
    def load():
        return [{"id": 1, "text": "hello"}, {"id": 2, "text": "BROKEN answer"}, {"id": 3, "text": "bye"}]

    AnyFastRecordsOperator(
        task_id="classify", records=load(), prompt="Classify: {{ record.text }}", output_schema=SCHEMA,
        model=MODEL, prices=PRICES, id_field="id", max_output_retries=0, retries=0,
    )

with DAG("obs_chat", schedule=None, start_date=START):
    AnyFastChatOperator(task_id="ask", prompt="Say hello", model=MODEL)
"""

_DRIVER = f"""
import json, sys
from airflow.__main__ import main
commands, codes_file, codes = json.loads(sys.argv[1]), sys.argv[2], []
for argv in commands:
    sys.stdout.write("\\n{MARK} " + " ".join(argv) + "\\n")  # one write: lineage threads print too
    sys.stdout.flush()
    sys.argv = ["airflow", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)  # "DagRun failed": 1
    codes.append(code)
with open(codes_file, "w") as out:
    json.dump(codes, out)
"""


def run_airflow(home: Path, env_extra: dict[str, str], dag_ids: list[str]) -> list[tuple[int, str]]:
    """``airflow db migrate`` then ``airflow dags test`` each DAG, in one fresh process; (exit code, output) each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENLINEAGE"))}
    env.update(
        AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True", NO_PROXY="127.0.0.1,localhost", **env_extra,
    )  # fmt: skip
    commands = [["db", "migrate"], *(["dags", "test", dag_id] for dag_id in dag_ids)]
    codes_file = home / "exit_codes.json"
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(commands), str(codes_file)],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outputs = re.split(rf"\n{MARK} [^\n]*\n", done.stdout)[1:]  # each command's output, after its marker
    codes = json.loads(codes_file.read_text())
    assert len(codes) == len(outputs) == len(commands), done.stdout[-3000:] + done.stderr[-3000:]
    results = list(zip(codes, outputs, strict=True))
    return results[1:]


def write_dags(home: Path, tmp: Path) -> tuple[Path, Path]:
    """The three DAGs and the storage DAG's input file; returns (input file, output folder)."""
    source, output = tmp / "in" / "tickets.jsonl", tmp / "out" / "labels"
    source.parent.mkdir(parents=True)
    source.write_text("".join(json.dumps({"id": i, "text": f"ticket {i}"}) + "\n" for i in range(4)))
    (home / "dags").mkdir(parents=True)
    constants = {"INPUT": str(source), "OUTPUT": str(output), "SCHEMA": SCHEMA, "MODEL": MODEL, "PRICES": PRICES}
    head = "\n".join(f"{name} = {value!r}" for name, value in constants.items())
    body = textwrap.dedent(DAGS).replace("START = ", head + "\nSTART = ", 1)
    (home / "dags" / "obs_dags.py").write_text(body)
    return source, output


def anyfast_conn(server: AnyFastTestServer) -> dict[str, str]:
    conn = {"conn_type": "anyfast", "host": server.base_url, "password": TOKEN, "extra": {"max_retry_wait": 5}}
    return {"AIRFLOW_CONN_ANYFAST_DEFAULT": json.dumps(conn)}


def datagrams(sock: socket.socket) -> list[str]:
    """Every StatsD line already delivered to ``sock`` (the sender has exited: nothing more comes)."""
    sock.setblocking(False)
    lines: list[str] = []
    while True:
        try:
            lines.extend(sock.recv(65535).decode().splitlines())
        except BlockingIOError:
            return lines


def metric_sums(lines: list[str], prefix: str = "airflow.anyfast.") -> dict[str, float]:
    """``name -> summed value`` of our metrics (counters add up; timings too, which is enough to see them)."""
    sums: dict[str, float] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name.startswith(prefix):
            sums[name.removeprefix("airflow.")] = sums.get(name.removeprefix("airflow."), 0) + float(rest.split("|")[0])
    return sums


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Both DAGs run once with lineage to a file and StatsD to a socket; what each produced."""
    tmp = tmp_path_factory.mktemp("observed")
    home = tmp / "home"
    source, output = write_dags(home, tmp)
    events_file = tmp / "lineage.jsonl"
    with AnyFastTestServer(token=TOKEN) as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind(("127.0.0.1", 0))
        server.push_fault(Fault("rate_limit", retry_after=0.01))  # the first request gets a 429, then a retry
        server.add_rule("BROKEN", Fault("invalid_json"))
        env = {
            **anyfast_conn(server),
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events_file), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "anyfast-tests",
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(sock.getsockname()[1]),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        }
        results = run_airflow(home, env, ["obs_storage", "obs_xcom_fails", "obs_chat"])
        yield {
            "results": results, "source": source, "output": output, "requests": server.request_count(),
            "events": [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()],
            "metrics": metric_sums(datagrams(sock)),
        }  # fmt: skip


def task_events(observed: dict[str, Any], dag_id: str, task_id: str = "classify") -> dict[str, dict[str, Any]]:
    """One task's events, by event type."""
    job = f"{dag_id}.{task_id}"
    return {e["eventType"]: e for e in observed["events"] if e.get("job", {}).get("name") == job}


def test_the_runs_end_as_expected(observed: dict[str, Any]) -> None:
    (ok_code, ok_out), (fail_code, _), (chat_code, chat_out) = observed["results"]
    assert ok_code == 0, ok_out[-3000:]
    assert chat_code == 0, chat_out[-3000:]
    assert fail_code != 0, "the run with an invalid answer must fail (max_error_rate=0)"
    assert observed["requests"] == 4 + 1 + 3 + 1  # 4 records, one 429 retried, 3 records (no re-ask), 1 chat
    if AIRFLOW_V3:  # 2.11's `dags test` shows no task logs; tests/core/records/test_meter.py checks the line there
        assert "cost 0.0" in ok_out and "AnyFast run summary" in ok_out, ok_out[-3000:]


def test_lineage_names_input_and_output_datasets_with_the_schema(observed: dict[str, Any]) -> None:
    events = task_events(observed, "obs_storage")
    assert {"START", "COMPLETE"} <= set(events), sorted(e["eventType"] for e in observed["events"])
    for kind in ("START", "COMPLETE"):
        event = events[kind]
        assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [("file", str(observed["source"]))]
        (out,) = event["outputs"]
        assert (out["namespace"], out["name"]) == ("file", str(observed["output"]))
        fields = {f["name"]: f["type"] for f in out["facets"]["schema"]["fields"]}
        assert fields == {"label": "string", "score": "number"}
        facet = event["run"]["facets"]["anyfast"]
        assert facet["model"] == MODEL and len(facet["promptFingerprint"]) == 16
        assert facet["connectionId"] == "anyfast_default"
    assert "records" not in events["START"]["run"]["facets"]["anyfast"] or not events["START"]["run"]["facets"][
        "anyfast"
    ].get("records")


def test_the_complete_event_carries_counts_tokens_and_cost(observed: dict[str, Any]) -> None:
    complete = task_events(observed, "obs_storage")["COMPLETE"]
    facet = complete["run"]["facets"]["anyfast"]
    assert facet["records"] == {"success": 4}
    assert facet["requests"] == 5  # the 429 is a paid attempt too
    assert facet["tokens"]["total_tokens"] > 0
    usage = facet["tokens"]
    expected = (usage["prompt_tokens"] * 0.3 + max(usage["completion_tokens"], usage["total_tokens"] -
                usage["prompt_tokens"]) * 2.5) / 1e6  # fmt: skip
    assert facet["estimatedCost"] == pytest.approx(expected, abs=1e-6)
    assert complete["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 4


def test_a_failed_run_reports_its_counts_and_its_xcom_input(observed: dict[str, Any]) -> None:
    events = task_events(observed, "obs_xcom_fails")
    assert "FAIL" in events and "COMPLETE" not in events
    fail = events["FAIL"]
    assert [(d["namespace"], d["name"]) for d in fail["inputs"]] == [("anyfast-tests", "obs_xcom_fails.load.xcom")]
    assert [(d["namespace"], d["name"]) for d in fail["outputs"]] == [("anyfast-tests", "obs_xcom_fails.classify.xcom")]
    facet = fail["run"]["facets"]["anyfast"]
    assert facet["records"] == {"success": 2, "invalid_output": 1}
    assert facet["requests"] == 3 and facet["tokens"]["total_tokens"] > 0


def test_statsd_receives_counts_tokens_cost_and_latency(observed: dict[str, Any]) -> None:
    metrics = observed["metrics"]
    complete = task_events(observed, "obs_storage")["COMPLETE"]["run"]["facets"]["anyfast"]
    failed = task_events(observed, "obs_xcom_fails")["FAIL"]["run"]["facets"]["anyfast"]
    chat = task_events(observed, "obs_chat", "ask")["COMPLETE"]["run"]["facets"]["anyfast"]
    assert metrics["anyfast.requests"] == 5 + 3 + 1
    assert metrics["anyfast.retries"] == 1
    assert metrics["anyfast.rate_limited"] == 1
    assert metrics["anyfast.records.success"] == 4 + 2
    assert metrics["anyfast.records.invalid_output"] == 1
    for kind in ("prompt", "completion", "total"):
        key = f"{kind}_tokens"
        assert (
            metrics[f"anyfast.tokens.{kind}"] == complete["tokens"][key] + failed["tokens"][key] + chat["tokens"][key]
        )
    cost = complete["estimatedCost"] + failed["estimatedCost"]
    assert metrics["anyfast.cost_micros"] == pytest.approx(cost * 1e6, abs=2)
    assert metrics["anyfast.request.latency"] > 0 and metrics["anyfast.request.latency_max"] > 0


def test_a_run_succeeds_when_the_metrics_and_lineage_backends_are_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _, output = write_dags(home, tmp_path)
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))  # ports nothing listens on once closed: both backends are down
        udp.bind(("127.0.0.1", 0))
        lineage_port, statsd_port = tcp.getsockname()[1], udp.getsockname()[1]
    with AnyFastTestServer(token=TOKEN) as server:
        env = {
            **anyfast_conn(server),
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "http", "url": f"http://127.0.0.1:{lineage_port}", "timeout": 2}
            ),
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd_port),
        }
        ((code, out),) = run_airflow(home, env, ["obs_storage"])
        assert code == 0, out[-3000:]
        assert server.request_count() == 4
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["counts"]["success"] == 4


def test_the_chat_operator_reports_its_model_and_usage(observed: dict[str, Any]) -> None:
    events = task_events(observed, "obs_chat", "ask")
    start, complete = events["START"]["run"]["facets"]["anyfast"], events["COMPLETE"]["run"]["facets"]["anyfast"]
    assert start["model"] == complete["model"] == MODEL
    assert not start.get("tokens")
    usage = complete["tokens"]
    assert usage["total_tokens"] > 0 and usage["total_tokens"] >= usage["prompt_tokens"] + usage["completion_tokens"]


def test_the_asset_event_carries_a_markdown_summary(
    run_dag: Any, anyfast_conn: AnyFastTestServer, tmp_path: Path
) -> None:
    out = tmp_path / "labels"
    body = """
    import pendulum
    from airflow.sdk import DAG
    from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

    with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        AnyFastRecordsOperator(
            task_id="label", records=[{"id": 1, "text": "a"}, {"id": 2, "text": "b"}], prompt="{{ record.text }}",
            output_path=OUT, id_field="id",
        )
    """
    result = run_dag(body, "obs_asset_summary", {"OUT": str(out)})
    assert result.ok, result.output[-3000:]
    (extra,) = result.asset_events(f"file://{out}")
    assert "records: 2 (success 2)" in extra["summary"] and f"`file://{out}`" in extra["summary"]
    assert anyfast_conn.request_count() == 2


def test_the_metric_names_in_the_docs_are_the_ones_emitted() -> None:
    from airflow_provider_anyfast.metrics import METRICS

    docs = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    documented = set(re.findall(r"^\| `(anyfast\.[a-z_.]+)` \|", docs, re.MULTILINE))
    assert documented == set(METRICS)
