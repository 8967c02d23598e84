"""Suite-wide set-up: an isolated Airflow home and metadata DB, DAG runs, the local AnyFast server, moto S3.

Airflow reads its configuration when first imported, so the environment is set here,
at conftest import time, before any test module imports airflow.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagrun import DagRunner, RunDag  # tests/dagrun.py: tests/ is on sys.path (pyproject.toml: pythonpath)

_HOME = Path(tempfile.mkdtemp(prefix="anyfast-airflow-home-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(_HOME / "dags"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
)
(_HOME / "dags").mkdir(exist_ok=True)


#: ``airflow.sdk`` names the tests use -> (module, name) where Airflow 2.11 keeps them.
_SDK_ON_AIRFLOW2 = {
    "DAG": ("airflow.models.dag", "DAG"), "dag": ("airflow.decorators", "dag"), "task": ("airflow.decorators", "task"),
    "task_group": ("airflow.decorators", "task_group"), "Asset": ("airflow.datasets", "Dataset"),
    "AssetAlias": ("airflow.datasets", "DatasetAlias"), "Metadata": ("airflow.datasets.metadata", "Metadata"),
    "ObjectStoragePath": ("airflow.io.path", "ObjectStoragePath"), "Param": ("airflow.models.param", "Param"),
    "BaseOperator": ("airflow.models.baseoperator", "BaseOperator"), "chain": ("airflow.models.baseoperator", "chain"),
    "BaseHook": ("airflow.hooks.base", "BaseHook"), "Variable": ("airflow.models.variable", "Variable"),
    "Connection": ("airflow.models.connection", "Connection"), "TaskGroup": ("airflow.utils.task_group", "TaskGroup"),
    "Context": ("airflow.utils.context", "Context"), "get_current_context": ("airflow.operators.python",
                                                                          "get_current_context"),
}  # fmt: skip


def _airflow2_shims() -> None:
    """On Airflow 2.11, let tests written against Airflow 3 import the Airflow 3 names they use.

    Test plumbing only: package code never relies on these (it goes through ``compat.py``),
    and ``tests/ecosystem/test_airflow2.py`` parses the example DAGs in a clean process so a
    DAG that imports ``airflow.sdk`` without a fallback still fails there. Shimmed: a small
    ``airflow.sdk`` (the names above), ``airflow.dag_processing.dagbag.DagBag``,
    ``airflow.models.asset`` (the dataset tables, ``asset_id`` as a synonym),
    ``XComModel.get_many`` / ``deserialize_value``, ``DAG.schedule``, ``resetdb`` leaving
    logging alone, and ``dag.test()`` recording the DAG's datasets first.
    """
    import importlib
    import sys
    import types

    from airflow import __version__

    if int(__version__.split(".", 1)[0]) >= 3:
        return
    import airflow.dag_processing
    from airflow.models import dagbag, dataset, xcom
    from airflow.models.dag import DAG
    from airflow.utils import db
    from sqlalchemy.orm import synonym

    def sdk_name(name: str) -> Any:
        if name not in _SDK_ON_AIRFLOW2:
            raise AttributeError(f"airflow.sdk has no {name!r} in the Airflow 2.11 test shim (tests/conftest.py)")
        module, attr = _SDK_ON_AIRFLOW2[name]
        return getattr(importlib.import_module(module), attr)

    sdk = types.ModuleType("airflow.sdk", "Airflow 2.11 test shim: the airflow.sdk names the tests use")
    sdk.__getattr__ = sdk_name  # type: ignore[method-assign]
    asset = types.ModuleType("airflow.models.asset", "Airflow 2.11 test shim: the dataset tables")
    asset.AssetModel, asset.AssetEvent = dataset.DatasetModel, dataset.DatasetEvent  # type: ignore[attr-defined]
    dataset.DatasetEvent.asset_id = synonym("dataset_id")
    shims = {"airflow.sdk": sdk, "airflow.models.asset": asset, "airflow.dag_processing.dagbag": dagbag}
    for name, module in shims.items():
        sys.modules.setdefault(name, module)
    airflow.dag_processing.dagbag = dagbag  # type: ignore[attr-defined]
    xcom.XComModel = _XComModel2  # type: ignore[attr-defined]
    db.resetdb = _keeping_logging(db.resetdb)
    DAG.test = _synced_first(DAG.test)
    if not hasattr(DAG, "schedule"):
        DAG.schedule = property(lambda dag: dag.schedule_interval, doc="3.x's name for the schedule")


def _synced_first(test: Any) -> Any:
    """2.11's ``dag.test()`` skips what the DAG processor does first: record the DAG and its
    datasets in the DB. Without it, an outlet's event is dropped ("DatasetModel not found")."""

    def dag_test(dag: Any, *args: Any, **kwargs: Any) -> Any:
        dag.sync_to_db()
        return test(dag, *args, **kwargs)

    return dag_test


def _keeping_logging(reset: Any) -> Any:
    """2.11's migrations run alembic's ``fileConfig``: root at WARNING, a stderr handler bound to
    the capture of the test that reset the DB. A real task never migrates, so undo both."""

    def resetdb(*args: Any, **kwargs: Any) -> Any:
        root = logging.getLogger()
        level, handlers = root.level, root.handlers[:]
        try:
            return reset(*args, **kwargs)
        finally:
            root.setLevel(level)
            root.handlers[:] = handlers

    return resetdb


class _XComModel2:
    """Airflow 3's ``XComModel.get_many`` / ``deserialize_value`` over Airflow 2.11's XCom table."""

    @staticmethod
    def get_many(*, run_id: str, key: str | None = None, dag_ids: Any = None, task_ids: Any = None,
                 map_indexes: Any = None, **_: Any) -> Any:  # fmt: skip
        from airflow.models.xcom import BaseXCom
        from sqlalchemy import select

        query = select(BaseXCom).where(BaseXCom.run_id == run_id)
        for column, wanted in ((BaseXCom.key, key), (BaseXCom.dag_id, dag_ids), (BaseXCom.task_id, task_ids),
                               (BaseXCom.map_index, map_indexes)):  # fmt: skip
            if wanted is not None:
                values = [wanted] if isinstance(wanted, str | int) else list(wanted)
                query = query.where(column.in_(values))
        return query

    @staticmethod
    def deserialize_value(row: Any) -> Any:
        return row.value  # 2.11's XCom deserializes on load (init_on_load): JSON values come back whole


_airflow2_shims()

from airflow_provider_anyfast.testing.server import AnyFastTestServer  # noqa: E402

TOKEN = "sk-anyfast-test-token-5f3a9c"
S3_BUCKET = "anyfast-test"


@pytest.fixture
def anyfast_server() -> Iterator[AnyFastTestServer]:
    """A fresh local AnyFast-compatible server on 127.0.0.1 (own port, log and faults)."""
    with AnyFastTestServer(token=TOKEN) as server:
        yield server


@pytest.fixture
def anyfast_conn(anyfast_server: AnyFastTestServer, monkeypatch: pytest.MonkeyPatch) -> AnyFastTestServer:
    """``anyfast_default`` points at the local server (as a JSON env-var connection)."""
    conn = {"conn_type": "anyfast", "host": anyfast_server.base_url, "password": TOKEN,
            "extra": {"max_retry_wait": 5}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_DEFAULT", json.dumps(conn))
    return anyfast_server


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free 127.0.0.1 port, with one bucket, for the whole session."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=S3_BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def s3_bucket() -> str:
    return S3_BUCKET


@pytest.fixture
def aws_conn(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``aws_local`` Airflow connection to the moto server; returns its conn id."""
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_AWS_LOCAL", json.dumps(conn))
    return "aws_local"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata DB in the isolated AIRFLOW_HOME, reset once for the whole session (about 2.5 s)."""
    from airflow.utils.db import resetdb

    resetdb()


@pytest.fixture
def dag_header() -> str:
    """What the DAG files ``dag_runner`` writes start with; a suite's conftest overrides it with its imports."""
    return ""


@pytest.fixture
def dag_runner(
    airflow_db: None, dag_header: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[DagRunner]:
    """Writes DAG files into the DAGs folder and ``dag.test()``s them (tests/dagrun.py); removes them afterwards."""
    runner = DagRunner(capfd, caplog, header=dag_header)
    yield runner
    runner.cleanup()


@pytest.fixture
def run_dag(dag_runner: DagRunner) -> RunDag:
    """``run_dag(body, dag_id, constants=None, **dag_test_kwargs) -> DagRunResult``: ``DagRunner.run``."""
    return dag_runner.run


@pytest.fixture
def load_dag(dag_runner: DagRunner) -> Callable[..., Any]:
    """``load_dag(body, dag_id, constants=None) -> DagBag``: parse only, to check parse-time errors."""
    return dag_runner.load
