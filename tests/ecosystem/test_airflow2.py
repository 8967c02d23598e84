"""On Airflow 2.11, outside the test shims: the package and the example DAGs load as users get them.

``tests/conftest.py`` gives 2.11 tests a small ``airflow.sdk``; a DAG or module that imported
``airflow.sdk`` without a fallback would pass in-process and fail for users. This clean
subprocess (no conftest) is what catches it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_anyfast.compat import AIRFLOW_V3

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"

_CHECK = """
import importlib, json, pkgutil, sys
import airflow_provider_anyfast as pkg
modules = [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
for name in modules:
    importlib.import_module(name)
from airflow.models.dagbag import DagBag
from airflow.decorators import task
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
print(json.dumps({"sdk": "airflow.sdk" in sys.modules, "modules": len(modules), "dags": sorted(bag.dag_ids),
                  "errors": {k: v[-300:] for k, v in bag.import_errors.items()}, "decorator": callable(task.anyfast)}))
"""


@pytest.mark.skipif(AIRFLOW_V3, reason="guards the Airflow 2.11 test shims; 3.x runs with the real airflow.sdk")
def test_package_and_example_dags_load_on_airflow2_without_the_shims(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    done = subprocess.run(
        [sys.executable, "-c", _CHECK, str(EXAMPLE_DAGS)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sdk"] is False  # nothing pulled in a fake airflow.sdk
    assert result["errors"] == {}
    assert result["modules"] > 10 and result["decorator"] is True
    assert len(result["dags"]) == len(list(EXAMPLE_DAGS.glob("*.py")))
