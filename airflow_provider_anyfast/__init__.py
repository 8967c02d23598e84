"""Apache Airflow provider for AnyFast: LLM chat completions as ordinary pipeline steps."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-anyfast"


def connection_form() -> tuple[dict[str, Any], dict[str, Any]]:
    """The connection form: its extra fields and its field behaviour, both read from the one table
    of extras (``core/extras.py``). Imported when asked for, so importing the package stays cheap."""
    from airflow_provider_anyfast.core.extras import conn_fields, form_placeholders

    behaviour = {
        "hidden-fields": ["login", "schema", "port"],
        "relabeling": {"password": "API token", "host": "Base URL"},
        "placeholders": {"host": "https://www.anyfast.ai", "password": "sk-...", **form_placeholders()},
    }
    return conn_fields(), behaviour


#: The ``[anyfast]`` section of Airflow's configuration (``airflow config list`` shows it).
CONFIG: dict[str, Any] = {
    "anyfast": {
        "description": "Defaults for every AnyFast task of this Airflow installation.",
        "options": {
            "cache_path": {
                "description": "Answer cache used by every AnyFastRecordsOperator that sets no cache_path of its "
                "own (a URI such as s3://bucket/anyfast-cache or a local folder). With it, a retried or rerun "
                "task pays nothing for answers it already received, even without an output_path. Empty: no cache.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "s3://my-bucket/anyfast-cache",
                "default": "",
            },
            "cache_conn_id": {
                "description": "Connection used to reach cache_path (e.g. an aws connection for s3://). Empty: "
                "the task's storage_conn_id, else the filesystem's own default credentials.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "aws_default",
                "default": "",
            },
        },
    }
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's ProvidersManager (the entry point's target).

    A wrong dict here breaks every airflow command, so tests validate it against
    Airflow's own ``provider_info.schema.json``.
    """
    fields, behaviour = connection_form()
    return {
        "package-name": PACKAGE_NAME,
        "name": "AnyFast",
        "description": "Run Gemini chat completions through the AnyFast gateway, from one prompt "
        "to millions of records per task.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "anyfast",
                "hook-class-name": "airflow_provider_anyfast.hooks.anyfast.AnyFastHook",
                # Airflow >= 3.2 builds the connection form from these two keys only (the hook's
                # get_connection_form_widgets/get_ui_field_behaviour serve Airflow 2.11).
                "hook-name": "AnyFast",
                "conn-fields": fields,
                "ui-field-behaviour": behaviour,
            }
        ],
        "hooks": [
            {
                "integration-name": "AnyFast",
                "python-modules": ["airflow_provider_anyfast.hooks.anyfast"],
            }
        ],
        "operators": [
            {
                "integration-name": "AnyFast",
                "python-modules": ["airflow_provider_anyfast.operators.anyfast"],
            }
        ],
        "config": CONFIG,
        "task-decorators": [
            {"name": "anyfast", "class-name": "airflow_provider_anyfast.decorators.anyfast.anyfast_task"},
        ],
        "integrations": [
            {
                "integration-name": "AnyFast",
                "external-doc-url": "https://www.anyfast.ai",
                "tags": ["ai"],
            }
        ],
    }
