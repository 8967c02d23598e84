"""A remote output without storage_conn_id says which setting to add."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_anyfast.storage import storage_path


def test_a_remote_uri_without_a_connection_names_storage_conn_id(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_provider_anyfast.storage"):
        storage_path("s3://bucket/tickets/", None, field="output_path")  # builds the filesystem: no request
        storage_path("/tmp/rows", None, field="output_path")
    [warning] = [r.getMessage() for r in caplog.records]
    assert "output_path='s3://bucket/tickets/' has no storage_conn_id" in warning
    assert "Set storage_conn_id" in warning
