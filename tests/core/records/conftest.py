"""Fixtures for the record-plumbing tests: fresh S3 prefixes on the suite's moto server."""

from __future__ import annotations

import uuid

import pytest
from upath import UPath


@pytest.fixture
def s3_root(s3_endpoint: str, s3_bucket: str) -> UPath:
    """A fresh prefix in the bucket, as a UPath (nothing exists under it yet)."""
    return UPath(f"s3://{s3_bucket}/{uuid.uuid4().hex}", endpoint_url=s3_endpoint, key="testing", secret="testing")
