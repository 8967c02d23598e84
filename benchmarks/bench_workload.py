"""The workload every scenario shares: records, schema, prompt, and how the operator is driven.

The operator is driven through its own ``execute()`` with a minimal context (no scheduler,
no metadata DB): that is the code path a real task runs, from template rendering to the
manifest, without the fixed cost of a DAG run (which the fan-out peer measures instead).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel

MODEL = "gemini-2.5-flash"
PROMPT = "Classify this support ticket: {{ record.text }}"
SYSTEM_PROMPT = "You sort customer support tickets for an online shop."
_WORDS = "my order never arrived and the tracking page has not changed for a week please help".split(" ")  # noqa: SIM905


class Ticket(BaseModel):
    """The answer each record must get."""

    category: str
    urgent: bool


def setup_airflow_env(extra: dict[str, str] | None = None) -> Path:
    """An isolated Airflow home (set before ``airflow`` is imported); returns it."""
    home = Path(os.environ.get("ANYFAST_BENCH_HOME") or tempfile.mkdtemp(prefix="anyfast-bench-home-"))
    (home / "dags").mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "ANYFAST_BENCH_HOME": str(home),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "NO_PROXY": "127.0.0.1,localhost",
            **(extra or {}),
        }
    )
    return home


def record(i: int) -> dict[str, Any]:
    """One input record (a ~100-character ticket)."""
    words = " ".join(_WORDS[(i + k) % len(_WORDS)] for k in range(14))
    return {"id": f"T-{i}", "text": f"ticket {i}: {words}"}


def records(n: int) -> list[dict[str, Any]]:
    return [record(i) for i in range(n)]


def write_jsonl(path: Path, n: int) -> Path:
    """``n`` records as JSON Lines, streamed to disk (the input of the memory scenario)."""
    with path.open("w", encoding="utf-8") as stream:
        for i in range(n):
            stream.write(json.dumps(record(i)) + "\n")
    return path


def user_text(rec: dict[str, Any]) -> str:
    """The rendered prompt, for peers that build messages by hand."""
    return f"Classify this support ticket: {rec['text']}"


def peer_messages(rec: dict[str, Any]) -> list[dict[str, str]]:
    """What a hand-written client sends: the schema in the system prompt, as the operator does."""
    schema = json.dumps(Ticket.model_json_schema(), separators=(",", ":"))
    system = f"{SYSTEM_PROMPT}\nAnswer with one JSON value only, valid against this JSON schema:\n{schema}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user_text(rec)}]


class _OutletEvents(dict[Any, Any]):
    """Stands in for the task context's ``outlet_events`` accessor (one event per asset)."""

    def __missing__(self, key: Any) -> Any:
        self[key] = event = SimpleNamespace(extra={})
        return event


@dataclass(frozen=True)
class OperatorRun:
    """What one ``execute()`` took and produced."""

    seconds: float
    cpu_seconds: float
    summary: dict[str, Any]

    @property
    def succeeded(self) -> int:
        return int((self.summary.get("counts") or {}).get("success", 0))


def run_operator(
    source: Any,
    output_path: str,
    *,
    concurrency: int,
    requests_per_minute: float | None = None,
    task_id: str = "bench_records",
    cache_path: str | None = None,
) -> OperatorRun:
    """Build an ``AnyFastRecordsOperator`` and run its ``execute()``; wall and process time."""
    from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

    operator = AnyFastRecordsOperator(
        task_id=task_id,
        records=source,
        prompt=PROMPT,
        system_prompt=SYSTEM_PROMPT,
        output_schema=Ticket,
        id_field="id",
        output_path=output_path,
        max_concurrency=concurrency,
        requests_per_minute=requests_per_minute,
        cache_path=cache_path,
    )
    context: Any = {"ds": "2026-01-01", "run_id": "bench", "params": {}, "outlet_events": _OutletEvents()}
    cpu0, t0 = time.process_time(), time.perf_counter()
    summary = operator.execute(context, **_as_task_runner(operator))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    operator.hook.get_conn().close()
    return OperatorRun(seconds, cpu, summary)


def _as_task_runner(operator: Any) -> dict[str, Any]:
    """The marker the Task Runner passes to ``execute()`` (else Airflow warns about a direct call)."""
    try:
        from airflow.sdk.bases.operator import ExecutorSafeguard
    except ImportError:  # Airflow 2.11
        return {}
    return {f"{type(operator).__name__}__sentinel": ExecutorSafeguard.sentinel_value}
