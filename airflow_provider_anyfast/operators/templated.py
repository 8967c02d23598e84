"""Run settings that may come from a template (``max_total_tokens="{{ params.budget }}"``).

A template renders to text, so a templated number or flag is only known, and only
checked, after rendering; a literal one is still checked when the DAG is parsed.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_anyfast.assets import JINJA_MARKERS

#: The records operator's settings that may be templated, and the kind each renders to.
TEMPLATED_SETTINGS: dict[str, type] = {
    "max_total_tokens": int,
    "max_cost": float,
    "requests_per_minute": float,
    "tokens_per_minute": float,
    "max_error_rate": float,
    "cache_max_age": float,
    "refresh": bool,
}
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off", "")


def is_template(value: Any) -> bool:
    """True for a string that still holds Jinja (not rendered yet)."""
    return isinstance(value, str) and any(marker in value for marker in JINJA_MARKERS)


def coerce_setting(task_id: str, name: str, value: Any) -> Any:
    """The rendered text of a setting as its type; a ValueError names the setting and the value."""
    kind = TEMPLATED_SETTINGS[name]
    if not isinstance(value, str):
        return value
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
