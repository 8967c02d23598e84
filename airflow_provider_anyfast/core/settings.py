"""Typed connection settings: the extras of an ``anyfast`` connection, checked.

Kept apart from the hook so the client can be configured (and tested) without Airflow,
and so a wrong extra fails with its name and the fix, not deep inside a call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from airflow_provider_anyfast.core.client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    AnyFastClient,
)
from airflow_provider_anyfast.core.params import DEFAULT_MODEL
from airflow_provider_anyfast.core.retry import RetryPolicy
from airflow_provider_anyfast.exceptions import AnyFastConfigError

EXTRA_PREFIX = "extra__anyfast__"
log = logging.getLogger(__name__)


class ConnectionSettings(BaseModel):
    """What an ``anyfast`` connection's extras may set, with defaults for the rest."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: str = DEFAULT_MODEL
    timeout: float = Field(default=DEFAULT_READ_TIMEOUT, gt=0, le=3600)
    connect_timeout: float = Field(default=DEFAULT_CONNECT_TIMEOUT, gt=0, le=300)
    max_retries: int = Field(default=5, ge=0, le=50)
    max_retry_wait: float = Field(default=60.0, gt=0, le=3600)
    backoff_initial: float = Field(default=1.0, ge=0, le=600)
    backoff_max: float = Field(default=30.0, ge=0, le=3600)
    rate_limit_budget: float = Field(default=120.0, ge=0, le=3600)
    extra_models: tuple[str, ...] = ()
    price_table: dict[str, dict[str, float]] | None = None
    requests_per_minute: float | None = Field(default=None, ge=1)
    tokens_per_minute: float | None = Field(default=None, ge=1)
    limits_conn_id: str | None = None

    @field_validator("extra_models", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            return tuple(name.strip() for name in value.replace("\n", ",").split(",") if name.strip())
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _default_when_blank(cls, value: Any) -> Any:
        return DEFAULT_MODEL if value in (None, "") else value

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any]) -> ConnectionSettings:
        """Read extras, with or without the old ``extra__anyfast__`` prefix; blank means default."""
        cleaned: dict[str, Any] = {}
        for key, value in extras.items():
            name = key.removeprefix(EXTRA_PREFIX)
            if value is None or value == "":
                continue
            cleaned[name] = value
        unknown = sorted(set(cleaned) - set(cls.model_fields))
        if unknown:  # most likely a typo ('max_retires'): say so rather than silently use the default
            log.warning(
                "anyfast connection: unknown extra(s) %s ignored; known extras are: %s",
                ", ".join(unknown), ", ".join(sorted(cls.model_fields)),
            )  # fmt: skip
        try:
            return cls.model_validate(cleaned)
        except ValidationError as exc:
            problems = "; ".join(
                f"extra '{'.'.join(str(p) for p in e['loc'])}' {e['msg'].lower()} (got {e['input']!r})"
                for e in exc.errors()
            )
            raise AnyFastConfigError(f"invalid anyfast connection extras: {problems}") from None

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries,
            max_retry_wait=self.max_retry_wait,
            backoff_initial=self.backoff_initial,
            backoff_max=self.backoff_max,
            rate_limit_budget=self.rate_limit_budget,
        )

    def make_client(self, base_url: str | None, token: str | None, *, pool_size: int = 16) -> AnyFastClient:
        """The one place a client is built from connection settings."""
        return AnyFastClient(
            base_url,
            token or "",
            connect_timeout=self.connect_timeout,
            read_timeout=self.timeout,
            retry=self.retry_policy(),
            pool_size=pool_size,
        )
