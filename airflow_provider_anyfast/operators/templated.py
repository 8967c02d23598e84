"""Run settings that may come from a template (``max_total_tokens="{{ params.budget }}"``).

A template renders to text, so a templated number or flag is only known, and only
checked, after rendering; a literal one is still checked when the DAG is parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from airflow_provider_anyfast.assets import JINJA_MARKERS
from airflow_provider_anyfast.core.records.settings import RunSettings, RunSettingsError

#: The records operator's settings that may be templated, and the kind each renders to.
TEMPLATED_SETTINGS: dict[str, type] = {
    "max_total_tokens": int,
    "max_cost": float,
    "requests_per_minute": float,
    "tokens_per_minute": float,
    "max_error_rate": float,
    "cache_max_age": float,
    "refresh": bool,
    "budget_scope": str,
}
#: The records operator's flat arguments that make up its RunSettings (``price`` and ``account``, the
#: account's limits with the task's budget scope, come from the connection).
RUN_SETTINGS = tuple(
    f.name for f in fields(RunSettings) if f.name not in ("price", "account", "flush_interval", "stop_grace")
)
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off", "")


def is_template(value: Any) -> bool:
    """True for a string that still holds Jinja (not rendered yet)."""
    return isinstance(value, str) and any(marker in value for marker in JINJA_MARKERS)


def coerce_setting(task_id: str, name: str, value: Any) -> Any:
    """The rendered text of a setting as its type; a ValueError names the setting and the value."""
    kind = TEMPLATED_SETTINGS[name]
    if not isinstance(value, str):
        return value
    if kind is str:  # a name: as rendered, and an empty one is none
        return value or None
    text = value.strip()
    if kind is bool:
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{task_id}: {name} rendered to {value!r}; expected true or false")
    if text.lower() in ("", "none", "null"):
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{task_id}: {name} rendered to {value!r}, which is not a number") from None
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"{task_id}: {name} rendered to {value!r}; expected a whole number")
        return int(number)
    return number


def run_settings(task_id: str, values: Mapping[str, Any], rendered: bool) -> tuple[RunSettings, dict[str, Any]]:
    """The checked RunSettings, and the templated values as their type once ``rendered``.

    Before rendering (DAG parse time) a setting that is still a template is left at its
    default and every literal one is checked; after rendering every one is.
    """
    given = dict(values)
    coerced: dict[str, Any] = {}
    for name in TEMPLATED_SETTINGS:
        if not rendered and is_template(given[name]):
            del given[name]
            continue
        given[name] = coerce_setting(task_id, name, given[name])
        if rendered:
            coerced[name] = given[name]
    try:
        return RunSettings.from_values(given), coerced
    except RunSettingsError as exc:
        raise RunSettingsError(f"{task_id}: {exc}") from None
