"""The one table of an ``anyfast`` connection's extras: name, default, range, and how the form shows it.

The settings model (``core/settings.py``) takes each field's default and range from here, the
connection form (the provider info's ``conn-fields`` and the 2.11 hook widgets) its labels and
bounds, and the docs test its names. An extra added anywhere else is a test failure, not a
second definition. Extras no setting reads are most likely typos (``modle``, ``max_retires``):
at run time they only warn (the task still runs on the defaults); the connection test fails
on them, since a person is there to fix the form.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from airflow_provider_anyfast.core.client import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
from airflow_provider_anyfast.core.params import DEFAULT_MODEL

EXTRA_PREFIX = "extra__anyfast__"


@dataclass(frozen=True, slots=True)
class FormField:
    """How the connection form shows an extra (those without one are set in the extra JSON)."""

    label: str
    description: str  # Airflow >= 3.3 shows no placeholders for extras: say the default and format here
    kind: str  # JSON schema type: "string", "number" or "integer"
    placeholder: str | None = None  # None: the default


@dataclass(frozen=True, slots=True)
class Extra:
    """One extra: its default and range (checked by the settings model), and its form field if any."""

    name: str
    default: Any = None
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    form: FormField | None = None

    def field(self) -> Any:
        """The settings model's ``Field`` for this extra."""
        return Field(default=self.default, gt=self.gt, ge=self.ge, le=self.le)

    def form_schema(self) -> dict[str, Any]:
        """The form's JSON schema: blank allowed; ``minimum``, not ``exclusiveMinimum`` (which the form
        ignores), so "more than 0" asks for at least 1."""
        assert self.form is not None
        schema: dict[str, Any] = {"type": [self.form.kind, "null"]}
        low = self.ge if self.ge is not None else (self.gt + 1 if self.gt is not None else None)
        if low is not None:
            schema["minimum"] = low
        if self.le is not None:
            schema["maximum"] = self.le
        return schema

    def placeholder(self) -> str:
        assert self.form is not None
        if self.form.placeholder is not None:
            return self.form.placeholder
        return f"{self.default:g}" if isinstance(self.default, int | float) else str(self.default)


EXTRAS: dict[str, Extra] = {
    extra.name: extra
    for extra in (
        Extra("model", DEFAULT_MODEL, form=FormField(
            "Default model",
            f"Model used when a task names none, e.g. {DEFAULT_MODEL} (the default when empty).", "string",
        )),
        Extra("timeout", DEFAULT_READ_TIMEOUT, gt=0, le=3600, form=FormField(
            "Read timeout (seconds)", "Seconds to wait for an answer before retrying; default 120.", "number",
        )),
        Extra("connect_timeout", DEFAULT_CONNECT_TIMEOUT, gt=0, le=300),
        Extra("max_retries", 5, ge=0, le=50, form=FormField(
            "Max retries", "Retries after a 429, a 5xx or a network error, 0 to 50; default 5.", "integer",
        )),
        Extra("max_retry_wait", 60.0, gt=0, le=3600, form=FormField(
            "Longest server-requested wait (seconds)",
            "A Retry-After longer than this fails the call instead of blocking; default 60.", "number",
        )),
        Extra("backoff_initial", 1.0, ge=0, le=600),
        Extra("backoff_max", 30.0, ge=0, le=3600),
        Extra("rate_limit_budget", 120.0, ge=0, le=3600),
        Extra("extra_models", (), form=FormField(
            "Extra model names",
            "Comma-separated model names to accept without the unknown-model warning; default none.", "string",
            placeholder="comma-separated model names",
        )),
        Extra("price_table"),
        Extra("requests_per_minute", ge=1, form=FormField(
            "Account requests per minute",
            "Your AnyFast account's request limit, shared by every task on this connection "
            "(through Redis with a shared-limits connection, else per task process); default none.", "number",
            placeholder="your AnyFast account's limit, e.g. 600",
        )),
        Extra("tokens_per_minute", ge=1, form=FormField(
            "Account tokens per minute", "Your AnyFast account's token limit, shared the same way; default none.",
            "number", placeholder="e.g. 1000000",
        )),
        Extra("limits_conn_id", form=FormField(
            "Redis connection for shared limits",
            "Id of an Airflow Redis connection: every worker shares one rate, one 429 pauses all, "
            "budgets count for the whole job. Default none: limits apply per process.", "string",
            placeholder="redis_default (optional: without it, limits apply per process)",
        )),
    )
}  # fmt: skip


def conn_fields() -> dict[str, Any]:
    """The provider info's ``conn-fields``: the extras the connection form shows."""
    return {
        name: {"label": extra.form.label, "description": extra.form.description, "schema": extra.form_schema()}
        for name, extra in EXTRAS.items()
        if extra.form is not None
    }


def form_placeholders() -> dict[str, str]:
    """The form fields' placeholders: each extra's default unless the table says otherwise."""
    return {name: extra.placeholder() for name, extra in EXTRAS.items() if extra.form is not None}


def unknown_extras(extras: Mapping[str, Any]) -> list[str]:
    """Each unknown extra with the known name it most likely means, e.g. ``'modle' (did you mean 'model'?)``."""
    known = sorted(EXTRAS)
    found = []
    for key, value in extras.items():
        name = key.removeprefix(EXTRA_PREFIX)
        if name in known or value is None or value == "":
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        found.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return sorted(found)
