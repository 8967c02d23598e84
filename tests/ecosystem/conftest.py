"""The ecosystem tests' DAG files (decorator, assets) run on Airflow 2.11 and 3.x alike.

Runs go through the suite-wide ``run_dag`` (tests/conftest.py); this suite only gives every
DAG file the imports its bodies use, each from wherever the running Airflow keeps it.
"""

from __future__ import annotations

import pytest
from dagrun import PORTABLE_DAG_HEADER  # tests/dagrun.py: tests/ is on sys.path


@pytest.fixture
def dag_header() -> str:
    """Every ecosystem DAG body uses ``DAG``, ``Asset``, ``dag``, ``task`` and ``START``."""
    return PORTABLE_DAG_HEADER
