"""Estimated cost from a per-model price table (currency units per million tokens).

Prices change and differ by contract, so none are built in: the user gives a table
(connection extra ``price_table`` or the operator's ``prices``), and the manifest and
log report the estimate, and ``max_cost`` can cap a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PER = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """Price per million tokens: input, cached input (defaults to input), output (thinking included)."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, usage: Mapping[str, Any] | None) -> float:
        usage = usage or {}
        prompt = int(usage.get("prompt_tokens") or 0)
        cached = min(prompt, int(usage.get("cached_tokens") or 0))
        completion = int(usage.get("completion_tokens") or 0)
        # thinking tokens are billed as output; some gateways count them only in total_tokens
        output = max(completion, int(usage.get("total_tokens") or 0) - prompt)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return ((prompt - cached) * self.input + cached * cached_price + output * self.output) / PER

    def worst_case(self, tokens: int) -> float:
        """An upper bound for a request estimated at ``tokens`` tokens, for budget reservations."""
        return tokens * max(self.input, self.output) / PER


def billed(
    usage: Mapping[str, Any] | None, answered: bool, estimate: int, cost_estimate: float, price: Price | None
) -> tuple[int, float, bool]:
    """Tokens and cost a budget counts for one request, and whether they are the estimate.

    An answer without usage was still billed: its estimate is counted, never zero.
    """
    tokens = int((usage or {}).get("total_tokens") or 0)
    if answered and not tokens:
        return estimate, cost_estimate, True
    return tokens, price.cost(usage) if price is not None else 0.0, False


def parse_price_table(table: Mapping[str, Any] | None) -> dict[str, Price]:
    """``{"gemini-2.5-flash": {"input": 0.3, "output": 2.5, "cached_input": 0.03}}`` -> prices."""
    prices: dict[str, Price] = {}
    for model, entry in (table or {}).items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"price table entry for {model!r} must be a mapping with 'input' and 'output'")
        try:
            prices[model] = Price(
                input=float(entry["input"]), output=float(entry["output"]),
                cached_input=None if entry.get("cached_input") is None else float(entry["cached_input"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"price table entry for {model!r} needs numeric 'input' and 'output' (per million tokens), "
                f"and optionally 'cached_input'; got {dict(entry)!r}"
            ) from None
        if min(prices[model].input, prices[model].output) < 0:
            raise ValueError(f"price table entry for {model!r} has a negative price")
    return prices
