"""Shared fixtures for the record-plumbing tests: a real S3 (moto server on 127.0.0.1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer
from upath import UPath

BUCKET = "anyfast-records"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free local port, with one bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def s3_root(s3_endpoint: str) -> UPath:
    """A fresh prefix in the bucket, as a UPath (nothing exists under it yet)."""
    return UPath(f"s3://{BUCKET}/{uuid.uuid4().hex}", endpoint_url=s3_endpoint, key="testing", secret="testing")
