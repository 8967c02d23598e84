"""Suite-wide set-up: an isolated Airflow home, the local AnyFast server, a real S3 (moto).

Airflow reads its configuration when first imported, so the environment is set here,
at conftest import time, before any test module imports airflow.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

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
