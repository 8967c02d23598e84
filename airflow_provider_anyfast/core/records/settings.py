"""The settings of one records run: one frozen object that checks itself (as urllib3's ``Retry`` does).

The records operator builds it in ``__init__`` (a literal value fails when the DAG is
parsed) and again once its templated settings are rendered; ``run_records`` checks it
again, so a run started from a test, a benchmark or a script gets the same checks. Each
error names the field, the value and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from airflow_provider_anyfast.core.limits.account import AccountLimits
from airflow_provider_anyfast.core.records.cost import Price

DEFAULT_CONTEXT_TOKENS = 1_048_576  # every Gemini model AnyFast lists takes a 1M-token context
_POSITIVE_OR_NONE = (
    "requests_per_minute", "tokens_per_minute", "max_total_tokens", "max_input_tokens", "max_cost", "cache_max_age",
)  # fmt: skip
_FIXES = {
    "requests_per_minute": "e.g. 600, or None for no limit",
    "tokens_per_minute": "e.g. 1000000, or None for no limit",
    "max_total_tokens": "e.g. 2000000, or None for no token budget",
    "max_input_tokens": "e.g. 1048576 (the model's context), or None",
    "max_cost": "in the price table's currency, e.g. 5.0, or None for no budget",
    "cache_max_age": "in seconds, e.g. 86400, or None to keep cached answers forever",
}


class RunSettingsError(ValueError):
    """A run setting is out of range: nothing was sent."""


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a records run sends, limits, reuses and judges; checked when made (and by ``run_records``).

    :param max_concurrency: requests in flight at once (1 to 1024).
    :param max_error_rate: share of records that may end without a valid answer (0.0 to 1.0).
    :param budget_scope: with shared limits, the name whose ``max_total_tokens``/``max_cost`` budgets
        count across runs (the operator's ``budget_scope``); None: this task in this DAG run.
    :param price: the model's price, for ``max_cost`` and the run's estimated cost.
    :param account: the connection's account limits (rates and budgets shared through Redis, or
        per process); None: no account limits.
    """

    max_concurrency: int = 8
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_total_tokens: int | None = None
    max_cost: float | None = None
    max_error_rate: float = 0.0
    max_output_retries: int = 1
    max_input_tokens: int = DEFAULT_CONTEXT_TOKENS
    progress_interval: float = 30.0
    flush_interval: float = 2.0
    stop_grace: float = 0.5
    dedup: bool = True
    cache_max_age: float | None = None
    refresh: bool = False
    keep_fields: tuple[str, ...] = ()
    budget_scope: str | None = None
    price: Price | None = None
    account: AccountLimits | None = None

    def __post_init__(self) -> None:
        if isinstance(self.keep_fields, str):
            raise RunSettingsError(f"keep_fields must be a list of field names, e.g. [{self.keep_fields!r}]")
        if not isinstance(self.keep_fields, tuple):  # a list from a DAG file: keep the object hashable and frozen
            object.__setattr__(self, "keep_fields", tuple(self.keep_fields or ()))
        self.check()

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RunSettings:
        """Settings from a mapping that may hold other names (an operator's arguments): those are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in names})

    def check(self, *, for_run: bool = False) -> None:
        """Raise ``RunSettingsError`` naming the first setting out of range and how to fix it.

        ``for_run`` adds what only a run can know: ``max_cost`` needs the model's price.
        """
        if not isinstance(self.max_concurrency, int) or not 1 <= self.max_concurrency <= 1024:
            raise RunSettingsError(
                f"max_concurrency must be an integer from 1 to 1024, got {self.max_concurrency!r}: e.g. 8"
            )
        rate = self.max_error_rate
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0.0 <= rate <= 1.0:
            raise RunSettingsError(
                f"max_error_rate must be between 0.0 and 1.0 (a share of the records), got {rate!r}: e.g. 0.05"
            )
        for name in _POSITIVE_OR_NONE:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value <= 0):
                raise RunSettingsError(f"{name} must be a positive number or None, got {value!r} ({_FIXES[name]})")
        if not isinstance(self.max_output_retries, int) or self.max_output_retries < 0:
            raise RunSettingsError(
                f"max_output_retries must be >= 0, got {self.max_output_retries!r}: 0 never re-asks, 1 re-asks once"
            )
        for name in ("progress_interval", "flush_interval", "stop_grace"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise RunSettingsError(f"{name} must be a number of seconds >= 0, got {value!r}")
        for name in ("dedup", "refresh"):
            if not isinstance(getattr(self, name), bool):
                raise RunSettingsError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not all(isinstance(name, str) and name for name in self.keep_fields):
            raise RunSettingsError("keep_fields must be a list of field names, e.g. ['sku', 'name']")
        if self.budget_scope is not None and not isinstance(self.budget_scope, str):
            raise RunSettingsError(
                f'budget_scope must be a name or None, got {self.budget_scope!r}: e.g. "classify-{{{{ ds[:7] }}}}"'
            )
        if self.account is not None and not isinstance(self.account, AccountLimits):
            raise RunSettingsError(
                f"account must be an AccountLimits or None, got {type(self.account).__name__}: "
                "e.g. AnyFastHook(...).account_limits()"
            )
        if for_run and self.max_cost is not None and self.price is None:
            raise RunSettingsError(
                "max_cost needs the model's price: give RunSettings(price=...) (the operator takes it from "
                "'prices' or the connection's 'price_table' extra)"
            )
