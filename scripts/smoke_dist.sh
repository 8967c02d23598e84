#!/usr/bin/env bash
# Build the sdist and wheel with `python -m build`, install each into a fresh venv with the
# locked dependencies (as constraints: only what the wheel needs), and smoke-test it there:
# import, provider discovery, @task.anyfast registration, one completion against the bundled
# local server. Reuses uv's cache, so it takes seconds after the first run.
# ANYFAST_AIRFLOW=2 checks against the Airflow 2.11 lock instead.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
cd "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/anyfast-smoke-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "==> build (sdist, then the wheel from the sdist)"
python -m build --installer uv --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
WHEEL="$(ls "$WORK"/dist/*.whl)"
SDIST="$(ls "$WORK"/dist/*.tar.gz)"
echo "    $(basename "$WHEEL")  $(basename "$SDIST")"
tar -tzf "$SDIST" >"$WORK/sdist.txt"
for member in CHANGELOG.md README.md docs/connection.md airflow_provider_anyfast/decorators/anyfast.py; do
  grep -q "/$member\$" "$WORK/sdist.txt" || { echo "the sdist lacks $member"; exit 1; }
done

cat >"$WORK/smoke.py" <<'PY'
"""Run inside the fresh venv, outside the source tree: the installed package must stand alone."""
import importlib.metadata as md
import json
import os
import sys
import warnings

import airflow
import airflow_provider_anyfast as pkg

assert "site-packages" in pkg.__file__, f"imported from the source tree: {pkg.__file__}"
assert md.version("airflow-provider-anyfast") == pkg.__version__, "version is not single-sourced"

from airflow.providers_manager import ProvidersManager

from airflow_provider_anyfast.decorators.anyfast import anyfast_task
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.testing.server import AnyFastTestServer

manager = ProvidersManager()
assert manager.providers["airflow-provider-anyfast"].version == pkg.__version__
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    assert manager.hooks["anyfast"].hook_class_name == "airflow_provider_anyfast.hooks.anyfast.AnyFastHook"
try:
    from airflow.sdk import task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task
assert task.anyfast is anyfast_task, "@task.anyfast is not registered"

with AnyFastTestServer(token="sk-smoke-test") as server:
    conn = {"conn_type": "anyfast", "host": server.base_url, "password": "sk-smoke-test"}
    os.environ["AIRFLOW_CONN_ANYFAST_DEFAULT"] = json.dumps(conn)
    text = AnyFastHook().chat_completion("Say hello to the smoke test", max_tokens=16).text
    assert text.startswith("Echo: Say hello"), text
print(f"smoke OK: {sys.argv[1]} {pkg.__version__} on Airflow {airflow.__version__}")
PY

LOCK="$ROOT/requirements/dev-airflow$AIRFLOW_LINE.lock"
uv venv --quiet -p "$PY" "$WORK/venv"
export AIRFLOW_HOME="$WORK/airflow" AIRFLOW__CORE__LOAD_EXAMPLES=False
cd "$WORK"  # keep the source tree off sys.path
for dist in "$WHEEL" "$SDIST"; do
  echo "==> install $(basename "$dist") into a fresh venv"
  uv pip install --quiet -p "$WORK/venv/bin/python" -c "$LOCK" --reinstall-package airflow-provider-anyfast "$dist"
  "$WORK/venv/bin/python" "$WORK/smoke.py" "$(basename "$dist")"
done
