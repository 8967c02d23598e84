"""Provider discovery: the entry point's dict, Airflow's own schemas, ProvidersManager, the CLI."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest
from packaging.utils import canonicalize_name

from airflow_provider_anyfast import PACKAGE_NAME, __version__, get_provider_info
from airflow_provider_anyfast.core.settings import ConnectionSettings
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.testing import AnyFastTestServer

AIRFLOW_DIR = Path(airflow.__file__).parent
HIDDEN = ["login", "schema", "port"]


def _schema(name: str) -> dict[str, Any]:
    return json.loads((AIRFLOW_DIR / name).read_text())


def _conn_type() -> dict[str, Any]:
    [entry] = get_provider_info()["connection-types"]
    return entry


def test_provider_info_is_valid_for_airflow() -> None:
    info = get_provider_info()
    jsonschema.validate(info, _schema("provider_info.schema.json"))
    dist = importlib.metadata.distribution(PACKAGE_NAME)
    assert info["package-name"] == canonicalize_name(dist.metadata["Name"]) == PACKAGE_NAME
    assert info["versions"] == [__version__] and dist.version == __version__
    [entry_point] = [ep for ep in dist.entry_points if ep.group == "apache_airflow_provider"]
    assert entry_point.load()() == info


def test_connection_type_points_at_the_hook() -> None:
    entry = _conn_type()
    module, _, name = entry["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is AnyFastHook
    assert entry["connection-type"] == AnyFastHook.conn_type and entry["hook-name"] == AnyFastHook.hook_name
    listed = {m for group in get_provider_info()["hooks"] for m in group["python-modules"]}
    assert AnyFastHook.__module__ in listed


def test_ui_field_behaviour() -> None:
    behaviour = AnyFastHook.get_ui_field_behaviour()
    jsonschema.validate(behaviour, _schema("customized_form_field_behaviours.schema.json"))
    assert behaviour["hidden_fields"] == HIDDEN
    assert behaviour["relabeling"] == {"password": "API token", "host": "Base URL"}
    assert behaviour["placeholders"]["host"] == "https://www.anyfast.ai"
    assert set(_conn_type()["conn-fields"]) <= set(behaviour["placeholders"])


def test_declared_ui_matches_the_hook_methods() -> None:
    """Airflow >= 3.2 reads the declared form; 2.11 calls the hook: both must show the same."""
    declared, behaviour = _conn_type()["ui-field-behaviour"], AnyFastHook.get_ui_field_behaviour()
    assert declared["hidden-fields"] == behaviour["hidden_fields"]
    assert declared["relabeling"] == behaviour["relabeling"]
    assert declared["placeholders"] == behaviour["placeholders"]


def test_declared_fields_are_typed_extras() -> None:
    fields = _conn_type()["conn-fields"]
    assert set(fields) == {
        "model", "timeout", "max_retries", "max_retry_wait", "extra_models",
        "requests_per_minute", "tokens_per_minute", "limits_conn_id",
    }  # fmt: skip
    assert set(fields) <= set(ConnectionSettings.model_fields)
    defaults = ConnectionSettings()
    for name, field in fields.items():
        assert field["label"]
        jsonschema.validate(None, field["schema"])  # every field may stay blank
        if name != "extra_models":
            jsonschema.validate(getattr(defaults, name), field["schema"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(0, fields["timeout"]["schema"])


def test_connection_form_widgets() -> None:
    pytest.importorskip("flask_appbuilder", reason="FAB widgets exist on Airflow 2.11 only")
    wtforms = pytest.importorskip("wtforms")
    widgets = AnyFastHook.get_connection_form_widgets()
    assert set(widgets) == set(_conn_type()["conn-fields"])
    allowed = (wtforms.IntegerField, wtforms.PasswordField, wtforms.StringField, wtforms.BooleanField)
    for widget in widgets.values():  # Airflow drops a hook that uses any other field class
        assert widget.field_class in allowed


def test_providers_manager_knows_anyfast() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3.x: hooks moved to the task-sdk's manager, still answered here
        hook_info = manager.hooks["anyfast"]
    assert hook_info is not None
    assert hook_info.hook_class_name == "airflow_provider_anyfast.hooks.anyfast.AnyFastHook"
    assert (hook_info.package_name, hook_info.connection_id_attribute_name) == (PACKAGE_NAME, "anyfast_conn_id")
    assert hook_info.hook_name == "AnyFast" and hook_info.connection_testable
    assert PACKAGE_NAME in manager.providers
    widgets = {key for key in manager.connection_form_widgets if key.startswith("extra__anyfast__")}
    assert widgets == {f"extra__anyfast__{name}" for name in _conn_type()["conn-fields"]}
    behaviour = manager.field_behaviours["anyfast"]
    assert behaviour["hidden_fields"] == HIDDEN and behaviour["relabeling"]["password"] == "API token"
    assert behaviour["placeholders"]["extra__anyfast__model"] == "gemini-2.5-flash"


def test_providers_page_links_existing_documentation() -> None:
    """Airflow 3 takes the Providers page's docs link from the "Documentation" project URL."""
    import importlib.metadata

    from airflow import __version__ as airflow_version
    from airflow.providers_manager import ProvidersManager

    urls = dict(u.split(", ", 1) for u in importlib.metadata.metadata(PACKAGE_NAME).get_all("Project-URL") or [])
    assert urls.get("Documentation") == "https://www.anyfast.ai"
    if airflow_version.startswith("3."):
        assert ProvidersManager().providers[PACKAGE_NAME].data["documentation-url"] == urls["Documentation"]


# --- the airflow CLI (subprocesses: a few seconds each) ----------------------------------------

#: Runs several airflow commands through the CLI's own entry point in one process: one import
#: of Airflow instead of one per command. Exits non-zero at the first command that fails.
_CLI_DRIVER = """
import json, sys
from airflow.__main__ import main
for argv in json.loads(sys.argv[1]):
    print("$ airflow", *argv, flush=True)
    sys.argv = ["airflow", *argv]
    try:
        main()
    except SystemExit as exc:
        if exc.code:
            raise
"""


def _airflow(commands: list[list[str]], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _CLI_DRIVER, json.dumps(commands)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"airflow CLI failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_cli_lists_the_provider() -> None:
    listed = _airflow([["providers", "list", "-o", "json"]], env=dict(os.environ))
    rows = json.loads(next(line for line in listed.splitlines() if line.startswith("[{")))  # after any log lines
    [row] = [r for r in rows if r["package_name"] == PACKAGE_NAME]
    assert row["version"] == __version__


def test_cli_config_list_shows_the_anyfast_section() -> None:
    """``[anyfast] cache_path`` gives every records task a cache: it must be discoverable where admins look."""
    listed = _airflow([["config", "list", "--section", "anyfast", "--include-descriptions"]], env=dict(os.environ))
    assert "[anyfast]" in listed and "cache_path" in listed and "cache_conn_id" in listed
    assert "pays nothing for answers it already received" in listed


def test_cli_connection_reaches_the_local_server(anyfast_server: AnyFastTestServer, tmp_path: Path) -> None:
    # A fresh Airflow home of its own; unit-test mode would keep the CLI's connection from being found.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path),
            "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        }
    )
    extra = json.dumps({"model": "gemini-2.0-flash", "max_retries": 1})
    add = ["connections", "add", "anyfast_cli", "--conn-type", "anyfast", "--conn-host",
           f"{anyfast_server.base_url}/v1", "--conn-password", anyfast_server.token, "--conn-extra", extra]  # fmt: skip
    output = _airflow([["db", "migrate"], add, ["connections", "test", "anyfast_cli"]], env=env)
    assert "Connection success!" in output.split("$ airflow connections test", 1)[1]
    assert anyfast_server.request_count("/v1/models") == 1 and anyfast_server.request_count() == 0
