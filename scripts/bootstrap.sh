# Sourced by scripts/test and scripts/demo: a venv with the locked dependencies, from nothing.
# Needs only python3 (>= 3.11). uv is installed with pip if missing: it resolves Airflow in seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export UV_SYSTEM_CERTS=1
export PYTHONDONTWRITEBYTECODE=1
AIRFLOW_LINE="${ANYFAST_AIRFLOW:-3}"          # 3 (default) or 2 (Airflow 2.11)
VENV="${ANYFAST_VENV:-$ROOT/.venv}"
[ "$AIRFLOW_LINE" = 3 ] || VENV="${ANYFAST_VENV:-$ROOT/.venv-airflow$AIRFLOW_LINE}"
LOCK="$ROOT/requirements/dev-airflow$AIRFLOW_LINE.lock"
PY="${PYTHON:-python3}"

if ! command -v uv >/dev/null 2>&1; then
  "$PY" -m pip install --quiet --disable-pip-version-check uv || "$PY" -m pip install --quiet --user uv
  export PATH="$HOME/.local/bin:$PATH"
fi
stamp="$VENV/.lock-stamp"
want="$(cat "$LOCK" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing dependencies into $VENV (Airflow $AIRFLOW_LINE line)"
  [ -x "$VENV/bin/python" ] || uv venv --quiet -p "$PY" "$VENV"
  uv pip install --quiet --compile-bytecode -p "$VENV/bin/python" -r "$LOCK"
  uv pip install --quiet --compile-bytecode --no-deps -p "$VENV/bin/python" -e "$ROOT"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
# The shared rate-limit tests start their own redis-server (tests/limits/conftest.py); CI is a fresh Debian machine.
if ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "==> installing redis-server (Debian package) for the shared-limits tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
