"""What the AnyFast operators tell the outside: OpenLineage facets, Stats metrics, a spend summary.

Mixins, so the operators stay declarative: ``AnyFastRecordsOperator`` and
``AnyFastChatOperator`` inherit the openlineage provider's hooks
(``get_openlineage_facets_on_start`` / ``_on_complete`` / ``_on_failure``) from here. The
provider is optional: these methods are only ever called by it, and import it lazily.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow_provider_anyfast import lineage
from airflow_provider_anyfast.metrics import StatsReporter

log = logging.getLogger("airflow_provider_anyfast.records")


def upstream_task_ids(value: Any) -> list[str]:
    """The tasks an XComArg (``records=upstream.output``) reads from; [] for anything else."""
    refs = getattr(value, "iter_references", None)
    if not callable(refs):
        return []
    try:
        return sorted({operator.task_id for operator, _ in refs()})
    except Exception:  # an unusual argument must never break parsing the DAG
        return []


def stats_reporter(task: Any) -> StatsReporter:
    """A fresh metrics reporter for one run, tagged with where the metrics come from."""
    return StatsReporter({"conn_id": task.anyfast_conn_id, "dag_id": task.dag_id, "task_id": task.task_id})


class RecordsObservability:
    """Lineage and metrics of ``AnyFastRecordsOperator``; ``_run_totals`` is set by ``execute``."""

    _run_totals: Mapping[str, Any] | None = None
    _records_upstream: list[str] = []

    # set by the operator
    task_id: str
    dag_id: str
    records: Any
    output_path: Any
    prompt: str
    system_prompt: str | None
    model: str | None
    anyfast_conn_id: str
    schema: Any

    def _observed(self) -> dict[str, Any]:
        model = self.model
        if not model:
            try:  # the connection's default model; lineage must never fail for want of it
                model = self.hook.settings.model  # type: ignore[attr-defined]
            except Exception:
                model = None
        schema = self.schema.json_schema if self.schema is not None else None
        return {
            "model": model, "connectionId": self.anyfast_conn_id,
            "promptFingerprint": lineage.prompt_fingerprint(self.prompt, self.system_prompt, schema),
        }  # fmt: skip

    def _datasets(self) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
        records = self.records
        if isinstance(records, str) or hasattr(records, "open"):
            inputs = [lineage.dataset_name(_uri(records))]
        else:
            inputs = [lineage.xcom_dataset_name(self.dag_id, task_id) for task_id in self._records_upstream]
        if self.output_path in (None, ""):
            output = lineage.xcom_dataset_name(self.dag_id, self.task_id)
        else:
            output = lineage.dataset_name(_uri(self.output_path).rstrip("/"))
        return inputs, output

    def _lineage(self, totals: Mapping[str, Any] | None) -> Any:
        inputs, output = self._datasets()
        schema = self.schema.json_schema if self.schema is not None else None
        return lineage.operator_lineage(inputs, output, schema, self._observed(), totals)

    def get_openlineage_facets_on_start(self) -> Any:
        """Input and output datasets, the output schema, the model and the prompt's fingerprint."""
        return self._lineage(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """As on start, plus rows per status, tokens and estimated cost of the run."""
        return self._lineage(self._run_totals)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """As on complete, with the counts reached before the run failed."""
        return self._lineage(self._run_totals)


class ChatObservability:
    """Lineage of ``AnyFastChatOperator``: the model and the usage of its one call."""

    _chat_usage: Mapping[str, Any] | None = None
    _chat_model: str | None = None
    anyfast_conn_id: str
    model: str | None

    def _chat_lineage(self) -> Any:
        observed = {"model": self._chat_model or self.model, "connectionId": self.anyfast_conn_id}
        totals = {"requests": None, "usage": dict(self._chat_usage)} if self._chat_usage is not None else None
        return lineage.operator_lineage([], None, None, observed, totals)

    def get_openlineage_facets_on_start(self) -> Any:
        return self._chat_lineage()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return self._chat_lineage()

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return self._chat_lineage()


def _uri(value: Any) -> str:
    """A URI string for a path given as a string or an ObjectStoragePath (no ``conn_id@`` part)."""
    if isinstance(value, str):
        return value
    protocol = getattr(value, "protocol", None)
    if protocol is not None and hasattr(value, "path"):
        scheme = protocol if isinstance(protocol, str) else protocol[0]
        return f"{scheme}://{value.path}" if scheme != "file" else str(value.path)
    return str(value)
