"""What a call cost, returned with its answer instead of written onto exceptions.

Every attempt may be billed except one known never to have reached the server (a
connect timeout), and every answer brings its token usage. ``Cost`` holds both, and
``+`` is the only rule that combines them: a JSON re-ask adds to the call before it, a
records run adds its records. An ``Outcome`` is a value with its cost (as urllib3's
``Retry.history`` or openai's ``retries_taken``); a failure carries the cost so far on
the exception (``exc.cost``), for callers that only see the exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens", "cached_tokens")


def add_usage(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> dict:
    """Sum two usage dicts key by key; a missing dict or key counts as zero."""
    a, b = a or {}, b or {}
    return {key: int(a.get(key) or 0) + int(b.get(key) or 0) for key in USAGE_KEYS}


@dataclass(frozen=True, slots=True)
class Cost:
    """Attempts sent (each may be billed), how many of them were known unbilled, and tokens used."""

    attempts: int = 0
    unbilled: int = 0
    usage: Mapping[str, int] = field(default_factory=dict)

    def __add__(self, other: Cost) -> Cost:
        """The one merge rule: attempts and tokens add up; no usage on either side stays no usage."""
        usage = add_usage(self.usage, other.usage) if self.usage or other.usage else {}
        return Cost(self.attempts + other.attempts, self.unbilled + other.unbilled, usage)

    @property
    def billable(self) -> int:
        """Attempts that may have been billed (a read timeout may; a connect timeout may not)."""
        return self.attempts - self.unbilled

    @property
    def usage_or_none(self) -> dict[str, int] | None:
        """The usage as a row holds it: None when no answer arrived."""
        return dict(self.usage) or None


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """A call's result and what it cost to get it."""

    value: T
    cost: Cost

    @property
    def attempts(self) -> int:
        return self.cost.attempts
