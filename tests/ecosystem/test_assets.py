"""AnyFastRecordsOperator declares its output as an Asset (a Dataset on 2.11), whose event carries the counts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.assets import NoOutletAssetWarning, declared_outlet, event_extra, records_asset
from airflow_provider_anyfast.compat import Asset
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator
from airflow_provider_anyfast.testing.server import AnyFastTestServer

RunDag = Callable[[str, str], Any]  # the run_dag fixture of tests/conftest.py


def records_operator(**kw: Any) -> AnyFastRecordsOperator:
    return AnyFastRecordsOperator(task_id="classify", records=[{"text": "hi"}], prompt="Say: {{ record.text }}", **kw)


@pytest.mark.parametrize(
    ("path", "uri"),
    [("s3://bucket/tickets/", "s3://bucket/tickets"), ("/data/out/", "file:///data/out"), ("gs://b/x", "gs://b/x")],
)
def test_an_output_folder_names_one_asset_however_it_is_spelled(path: str, uri: str) -> None:
    asset = records_asset(path)
    assert asset.uri == uri
    assert asset == records_asset(path.rstrip("/")) == records_asset(uri)


def test_a_plain_output_path_is_declared_as_the_outlet() -> None:
    op = records_operator(output_path="s3://bucket/tickets/")
    assert op.outlets == [records_asset("s3://bucket/tickets")] and op.outlet_asset == op.outlets[0]


def test_a_templated_output_path_declares_the_fixed_folder_above_it() -> None:
    assert records_operator(output_path="s3://bucket/tickets/{{ run_id }}/").outlets == [
        records_asset("s3://bucket/tickets")
    ]
    assert records_operator(output_path="/data/rows/day={{ ds }}").outlets == [records_asset("/data/rows")]
    named = records_operator(output_path="s3://bucket/tickets/{{ ds }}/", outlet_asset="s3://bucket/other")
    assert named.outlets == [records_asset("s3://bucket/other")]


def test_a_template_with_no_fixed_folder_warns_at_parse_time_with_the_fix() -> None:
    for path in ("{{ params.out }}/rows", "s3://{{ params.bucket }}/rows"):
        with pytest.warns(NoOutletAssetWarning, match="outlet_asset='s3://bucket/prefix'"):
            assert records_operator(output_path=path).outlets == []


def test_outlets_given_by_the_user_are_kept_and_not_doubled() -> None:
    mine = Asset("s3://bucket/other")
    op = records_operator(output_path="s3://bucket/tickets", outlets=[mine, records_asset("s3://bucket/tickets")])
    assert op.outlets == [mine, records_asset("s3://bucket/tickets")]


def test_false_declares_no_outlet_and_xcom_output_has_none_by_default() -> None:
    assert records_operator(output_path="s3://bucket/tickets", outlet_asset=False).outlets == []
    assert records_operator().outlets == []


def test_outlet_asset_must_be_an_asset_or_a_uri() -> None:
    with pytest.raises(TypeError, match="outlet_asset"):
        declared_outlet("s3://bucket/x", 42)  # type: ignore[arg-type]


def test_the_event_extra_leaves_out_what_grows_with_the_run() -> None:
    summary = {"rows": [{}] * 3, "files": ["rows/a"], "counts": {"success": 3}, "records": 3, "usage": {"total": 9}}
    assert event_extra(summary, "file:///x") == {
        "counts": {"success": 3},
        "records": 3,
        "usage": {"total": 9},
        "path": "file:///x",
    }


ASSET_DAG = """
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
RECORDS = [{"id": f"r{i}", "text": f"ticket number {i}"} for i in range(3)]

with DAG(DAG_ID, schedule=None, start_date=START, catchup=False):
    AnyFastRecordsOperator(
        task_id="plain", records=RECORDS, id_field="id", prompt="Classify: {{ record.text }}",
        output_schema=SCHEMA, output_path=PLAIN,
    )
    AnyFastRecordsOperator(
        task_id="dated", records=RECORDS[:2], id_field="id", prompt="Label: {{ record.text }}",
        output_schema=SCHEMA, output_path=PREFIX + "/{{ ds_nodash }}", outlet_asset=PREFIX,
    )
"""


def test_a_successful_run_records_an_asset_event_with_its_counts(
    run_dag: RunDag, anyfast_conn: AnyFastTestServer, tmp_path: Path
) -> None:
    plain, prefix = f"file://{tmp_path}/plain", f"file://{tmp_path}/dated"
    ran = run_dag(f"PLAIN = {plain!r}\nPREFIX = {prefix!r}\n" + ASSET_DAG, "eco_assets")
    assert ran.state == "success"

    (event,) = ran.asset_events(plain)
    assert event["counts"]["success"] == 3 and event["records"] == 3 and event["input_records"] == 3
    assert event["path"].endswith("/plain") and "files" not in event and "rows" not in event
    assert event["usage"]["total_tokens"] > 0

    (dated,) = ran.asset_events(prefix)
    assert dated["counts"]["success"] == 2
    folder = dated["path"].rsplit("/", 1)[-1]
    assert folder.isdigit() and len(folder) == 8  # the rendered {{ ds_nodash }}
    assert (tmp_path / "dated" / folder / "manifest.json").exists()
