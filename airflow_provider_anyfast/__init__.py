"""Apache Airflow provider for AnyFast: LLM chat completions as ordinary pipeline steps."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-anyfast"


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
        "integrations": [
            {
                "integration-name": "AnyFast",
                "external-doc-url": "https://www.anyfast.ai",
                "tags": ["ai"],
            }
        ],
    }
