"""OpenLineage for AnyFast tasks: which data went in, which came out, and what the model made of it.

The openlineage provider calls the operators' ``get_openlineage_facets_on_start`` /
``_on_complete`` / ``_on_failure``; they land here. This module imports the provider (and
the OpenLineage client) only inside its functions, so the package works without them.
Dataset names follow the provider's conventions: ``s3://bucket`` + key, ``gs://bucket`` +
key, ``file`` + absolute path; XCom input and output name the task that holds them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

#: URI schemes whose first path part is a bucket: OpenLineage names them ``scheme://bucket`` + key.
BUCKET_SCHEMES = {"s3": "s3", "s3a": "s3", "s3n": "s3", "gs": "gs", "gcs": "gs", "abfs": "abfs", "az": "abfs"}
JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


def dataset_name(uri: str) -> tuple[str, str]:
    """(namespace, name) of a storage URI or local path, as the openlineage provider spells them."""
    text = str(uri)
    if "://" not in text:
        return "file", os.path.abspath(text)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":  # file:///abs/path; a host (file://host/path) stays in the namespace, as common-io does
        return (f"file://{parts.netloc}" if parts.netloc else "file"), parts.path or "/"
    if scheme in BUCKET_SCHEMES:
        return f"{BUCKET_SCHEMES[scheme]}://{parts.netloc}", parts.path.lstrip("/") or "/"
    return f"{scheme}://{parts.netloc}", parts.path or "/"


def xcom_dataset_name(dag_id: str, task_id: str) -> tuple[str, str]:
    """(namespace, name) for a task's XCom: the deployment's lineage namespace, ``dag.task.xcom``."""
    from airflow.providers.openlineage.conf import namespace

    return namespace(), f"{dag_id}.{task_id}.xcom"


def prompt_fingerprint(prompt: str, system_prompt: str | None, schema: Mapping[str, Any] | None) -> str:
    """A short digest of what the model is asked (template text, system prompt, schema), not of run values."""
    text = json.dumps([prompt, system_prompt, schema], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def schema_fields(schema: Mapping[str, Any] | None) -> list[tuple[str, str, str | None]]:
    """(name, type, description) of an output schema's top-level properties."""
    fields = []
    for name, prop in ((schema or {}).get("properties") or {}).items():
        prop = prop if isinstance(prop, Mapping) else {}
        kind = prop.get("type")
        if isinstance(kind, list):
            kind = "|".join(str(k) for k in kind)
        elif kind is None:
            kind = "enum" if "enum" in prop else "any"
        fields.append((str(name), str(kind), prop.get("description")))
    return fields


def run_facet(observed: Mapping[str, Any], totals: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"anyfast": facet}``: model and prompt fingerprint, plus counts, tokens and cost once known."""
    from airflow_provider_anyfast.lineage_facets import AnyFastRunFacet

    fields: dict[str, Any] = {key: observed.get(key) for key in ("model", "promptFingerprint", "connectionId")}
    if totals is not None:
        fields.update(
            records={k: int(v) for k, v in (totals.get("counts") or {}).items() if v},
            requests=totals.get("requests"), tokens=dict(totals.get("usage") or {}),
            estimatedCost=totals.get("estimated_cost"),
        )  # fmt: skip
    return {"anyfast": AnyFastRunFacet(**fields)}


def operator_lineage(
    inputs: list[tuple[str, str]],
    output: tuple[str, str] | None,
    schema: Mapping[str, Any] | None,
    observed: Mapping[str, Any],
    totals: Mapping[str, Any] | None = None,
) -> Any:
    """The provider's ``OperatorLineage`` for one event; ``totals`` (counts, usage, cost) once the run ended."""
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    outputs = []
    if output is not None:
        facets: dict[str, Any] = {}
        fields = schema_fields(schema)
        if fields:
            facets["schema"] = SchemaDatasetFacet(
                fields=[SchemaDatasetFacetFields(name=n, type=t, description=d) for n, t, d in fields]
            )
        output_facets: dict[str, Any] = {}
        if totals is not None:
            rows = sum(int(n) for n in (totals.get("counts") or {}).values())
            output_facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=rows)
        outputs.append(OutputDataset(namespace=output[0], name=output[1], facets=facets, outputFacets=output_facets))
    return OperatorLineage(
        inputs=[Dataset(namespace=ns, name=name) for ns, name in inputs],
        outputs=outputs,
        run_facets=run_facet(observed, totals),
    )
