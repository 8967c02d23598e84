"""Apache Airflow provider for AnyFast: LLM chat completions as ordinary pipeline steps."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-anyfast"

#: The form's extra fields. Airflow >= 3.3 shows no placeholders for extras, so each field's
#: description says what it holds, its default and its format; ``minimum`` rather than
#: ``exclusiveMinimum``, which the form ignores.
CONN_FIELDS: dict[str, Any] = {
    "model": {
        "label": "Default model",
        "description": "Model used when a task names none, e.g. gemini-2.5-flash (the default when empty).",
        "schema": {"type": ["string", "null"]},
    },
    "timeout": {
        "label": "Read timeout (seconds)",
        "description": "Seconds to wait for an answer before retrying; default 120.",
        "schema": {"type": ["number", "null"], "minimum": 1, "maximum": 3600},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries after a 429, a 5xx or a network error, 0 to 50; default 5.",
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 50},
    },
    "max_retry_wait": {
        "label": "Longest server-requested wait (seconds)",
        "description": "A Retry-After longer than this fails the call instead of blocking; default 60.",
        "schema": {"type": ["number", "null"], "minimum": 1, "maximum": 3600},
    },
    "extra_models": {
        "label": "Extra model names",
        "description": "Comma-separated model names to accept without the unknown-model warning; default none.",
        "schema": {"type": ["string", "null"]},
    },
    "requests_per_minute": {
        "label": "Account requests per minute",
        "description": "Your AnyFast account's request limit, shared by every task on this connection "
        "(through Redis with a shared-limits connection, else per task process); default none.",
        "schema": {"type": ["number", "null"], "minimum": 1},
    },
    "tokens_per_minute": {
        "label": "Account tokens per minute",
        "description": "Your AnyFast account's token limit, shared the same way; default none.",
        "schema": {"type": ["number", "null"], "minimum": 1},
    },
    "limits_conn_id": {
        "label": "Redis connection for shared limits",
        "description": "Id of an Airflow Redis connection: every worker shares one rate, one 429 pauses all, "
        "budgets count for the whole job. Default none: limits apply per process.",
        "schema": {"type": ["string", "null"]},
    },
}
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["login", "schema", "port"],
    "relabeling": {"password": "API token", "host": "Base URL"},
    "placeholders": {
        "host": "https://www.anyfast.ai",
        "password": "sk-...",
        "model": "gemini-2.5-flash",
        "timeout": "120",
        "max_retries": "5",
        "max_retry_wait": "60",
        "extra_models": "comma-separated model names",
        "requests_per_minute": "your AnyFast account's limit, e.g. 600",
        "tokens_per_minute": "e.g. 1000000",
        "limits_conn_id": "redis_default (optional: without it, limits apply per process)",
    },
}


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
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
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
