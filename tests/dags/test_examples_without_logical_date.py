"""Airflow 3: a triggered run has no logical date (`airflow dags trigger`, the UI's Trigger button).

The example DAGs must run on such runs: their folders use ``run_id``, which every run has,
and their optional params are nullable so the Trigger form can be left empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagrun import DagRunner

from airflow_provider_anyfast.compat import AIRFLOW_V3
from airflow_provider_anyfast.testing.server import AnyFastTestServer

from .conftest import EXAMPLE_DAG_IDS, EXAMPLE_DAGS

pytestmark = pytest.mark.skipif(not AIRFLOW_V3, reason="runs without a logical date are Airflow 3's")


def test_ticket_classification_runs_without_a_logical_date(
    dag_runner: DagRunner, example_dags_copy: Path, anyfast_conn: AnyFastTestServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("AIRFLOW_VAR_ANYFAST_OUTPUT_BASE", tmp_path.as_uri())
    run = dag_runner.run(example_dags_copy, "anyfast_ticket_classification", logical_date=None)

    assert run.state == "success", run.output[-3000:]
    [folder] = (tmp_path / "ticket_classification").iterdir()
    assert folder.name == run.run_id  # the run's own folder, named by what every run has
    manifest = json.loads((folder / "classified" / "manifest.json").read_text())
    assert manifest["counts"]["success"] == manifest["records"] > 0


def test_optional_params_are_nullable_so_the_trigger_form_can_stay_empty() -> None:
    for dag_id in EXAMPLE_DAG_IDS:
        source = (EXAMPLE_DAGS / f"{dag_id}.py").read_text()
        assert 'Param("", type="string"' not in source, dag_id  # a required value: disables Trigger
        assert "{{ ds" not in source and "{{ ts" not in source, dag_id  # undefined without a logical date
