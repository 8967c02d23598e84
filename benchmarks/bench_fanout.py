"""The fan-out peer: one mapped Airflow task per record, each calling the hook, run with ``dag.test()``.

This is how the common-ai provider's examples scale an LLM call over records
(``.expand()`` over a list). It runs in a fresh process with its own Airflow home and
metadata DB, so only ``dag.test()`` itself is timed (not the imports, the migration or the
DAG file parse), which favours the peer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_peers import PeerRun
from benchmarks.bench_server import ServerProcess, connection_env
from benchmarks.bench_workload import records

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "anyfast_bench_fanout"
DAG_FILE = """\
from __future__ import annotations

import json

import pendulum

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import dag, task

RECORDS = json.loads({records!r})


@dag(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def anyfast_bench_fanout():
    @task
    def load() -> list[dict]:
        return RECORDS

    @task
    def classify(record: dict) -> dict:
        from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
        from benchmarks.bench_workload import Ticket, peer_messages

        value = AnyFastHook().complete_json(peer_messages(record), schema=Ticket)
        return {{"id": record["id"], "output": value.model_dump(mode="json")}}

    classify.expand(record=load())


anyfast_bench_fanout()
"""


def fanout(server: ServerProcess, latency: float, n: int) -> PeerRun:
    """Write the DAG, migrate a fresh metadata DB, time ``dag.test()`` in a child process."""
    server.reset(latency=latency)
    with tempfile.TemporaryDirectory(prefix="anyfast-bench-fanout-") as home:
        dags = Path(home) / "dags"
        dags.mkdir()
        (dags / f"{DAG_ID}.py").write_text(DAG_FILE.format(records=json.dumps(records(n)), dag_id=DAG_ID))
        env = {
            **os.environ,
            **connection_env(server.base_url),
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_fanout", str(dags)],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
    result = json.loads(child.stdout.strip().splitlines()[-1])
    ok = server.chat_count() if result["state"] == "success" else 0
    return PeerRun("one mapped task per record (dag.test)", latency, 1, n, result["seconds"], result["cpu"], ok)


def _child(dags: str) -> None:
    """In the child: parse the DAGs folder, then time ``dag.test()`` alone."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    dag = DagBag(dag_folder=dags).get_dag(DAG_ID)
    assert dag is not None, f"{DAG_ID} did not parse"
    cpu, start = time.process_time(), time.perf_counter()
    run = dag.test()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    state = str(getattr(run.state, "value", run.state))
    print(json.dumps({"seconds": seconds, "cpu": cpu, "state": state}))


if __name__ == "__main__":
    _child(sys.argv[1])
