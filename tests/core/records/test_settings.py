"""One validated settings object for a records run: checked when made, and again by ``run_records``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.records.plan import RecordsJob
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.runner import RunSpec, run_records
from airflow_provider_anyfast.core.records.settings import RunSettings, RunSettingsError
from airflow_provider_anyfast.core.records.sink import MemoryRowSink
from airflow_provider_anyfast.core.records.source import iter_source
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.testing import AnyFastTestServer


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency must be an integer from 1 to 1024, got 0"),
        ({"max_concurrency": 2.5}, "max_concurrency must be an integer"),
        ({"max_error_rate": 1.5}, "max_error_rate must be between 0.0 and 1.0"),
        ({"max_error_rate": "0.1"}, "max_error_rate must be between 0.0 and 1.0"),
        ({"requests_per_minute": 0}, r"requests_per_minute must be a positive number or None, got 0 \(e.g. 600"),
        ({"max_total_tokens": -5}, "max_total_tokens must be a positive number or None"),
        ({"max_cost": "lots"}, "max_cost must be a positive number or None, got 'lots'"),
        ({"cache_max_age": 0}, "cache_max_age must be a positive number or None"),
        ({"max_input_tokens": 0}, "max_input_tokens must be a positive number or None"),
        ({"max_output_retries": -1}, "max_output_retries must be >= 0"),
        ({"progress_interval": -1}, "progress_interval must be a number of seconds >= 0"),
        ({"dedup": "yes"}, "dedup must be True or False"),
        ({"keep_fields": "sku"}, r"keep_fields must be a list of field names, e.g. \['sku'\]"),
        ({"keep_fields": ["sku", ""]}, "keep_fields must be a list of field names"),
        ({"budget_scope": 202611}, "budget_scope must be a name or None, got 202611"),
        ({"account": {"requests_per_minute": 60}}, "account must be an AccountLimits or None, got dict"),
    ],
)
def test_a_bad_setting_is_named_with_its_fix(values: dict[str, Any], message: str) -> None:
    with pytest.raises(RunSettingsError, match=message):
        RunSettings(**values)


def test_settings_are_frozen_and_keep_fields_become_a_tuple() -> None:
    settings = RunSettings(keep_fields=["sku", "name"])  # type: ignore[arg-type]
    assert settings.keep_fields == ("sku", "name")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_concurrency = 0  # type: ignore[misc]
    with pytest.raises(RunSettingsError, match="max_concurrency"):
        dataclasses.replace(settings, max_concurrency=5000)


def test_from_values_ignores_other_names() -> None:
    settings = RunSettings.from_values({"max_concurrency": 3, "prompt": "x", "output_path": None})
    assert settings.max_concurrency == 3


def _spec(settings: RunSettings) -> RunSpec:
    job = RecordsJob(
        PromptTemplate("Text: {{ record.text }}"),
        ChatRequest.create(model="gemini-2.5-flash", params={}, json_mode=True),
        "id",
    )
    return RunSpec(job=job, schema=None, settings=settings)


def test_run_records_called_directly_checks_the_settings_before_any_request(
    anyfast_server: AnyFastTestServer,
) -> None:
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token)
    broken = RunSettings()
    object.__setattr__(broken, "max_error_rate", 7.0)  # slipped past __post_init__
    records = [{"id": 1, "text": "a"}]
    try:
        with pytest.raises(RunSettingsError, match=r"max_error_rate must be between 0\.0 and 1\.0"):
            run_records(client, _spec(broken), lambda: iter_source(records), MemoryRowSink())
        with pytest.raises(RunSettingsError, match="max_cost needs the model's price"):
            run_records(client, _spec(RunSettings(max_cost=1.0)), lambda: iter_source(records), MemoryRowSink())
        assert anyfast_server.request_count(None) == 0
        summary = run_records(client, _spec(RunSettings()), lambda: iter_source(records), MemoryRowSink())
    finally:
        client.close()
    assert [row["status"] for row in summary["rows"]] == ["success"]
    assert anyfast_server.request_count() == 1
