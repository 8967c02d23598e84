"""The core is usable from plain Python: importing every core module loads no Airflow.

A fresh interpreter imports each module under ``airflow_provider_anyfast.core`` and reports
what got loaded; an ``import airflow`` (direct, or through a face such as the hook) fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import importlib, json, pkgutil, sys
import airflow_provider_anyfast.core as core
names = [m.name for m in pkgutil.walk_packages(core.__path__, core.__name__ + ".")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"core": names, "loaded": sorted(sys.modules)}))
"""

FACES = ("hooks", "operators", "decorators", "compat", "assets", "storage")


@pytest.fixture(scope="module")
def probe() -> dict[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    result: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_probe_imported_the_whole_core(probe: dict[str, list[str]]) -> None:
    # guards the test itself: an empty walk would make the next assertions pass vacuously
    assert "airflow_provider_anyfast.core.client" in probe["core"]
    assert "airflow_provider_anyfast.core.records.engine" in probe["core"]


def test_core_imports_nothing_from_airflow(probe: dict[str, list[str]]) -> None:
    airflow = [name for name in probe["loaded"] if name == "airflow" or name.startswith("airflow.")]
    assert airflow == []


def test_core_imports_none_of_the_airflow_faces(probe: dict[str, list[str]]) -> None:
    faces = [n for n in probe["loaded"] if n.split(".")[:2][-1] in FACES and n.startswith("airflow_provider_anyfast.")]
    assert faces == []
