"""The daily-use tests' DAG files run on Airflow 2.11 and 3.x alike.

Runs go through the suite-wide ``run_dag`` (tests/conftest.py); this suite only gives every
DAG file the imports its bodies use, each from wherever the running Airflow keeps it.
"""

from __future__ import annotations

import pytest

DAG_HEADER = """\
import pendulum

try:
    from airflow.sdk import DAG, Asset, dag, task
except ImportError:  # Airflow 2.11
    from airflow.datasets import Dataset as Asset
    from airflow.decorators import dag, task
    from airflow.models.dag import DAG

START = pendulum.datetime(2026, 1, 1, tz="UTC")
"""


@pytest.fixture
def dag_header() -> str:
    """Every daily-use DAG body uses ``DAG``, ``Asset``, ``dag``, ``task`` and ``START``."""
    return DAG_HEADER
