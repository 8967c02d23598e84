"""Cost: the one rule that adds attempts and usage, and where a failure carries it."""

from __future__ import annotations

import pytest

from airflow_provider_anyfast.core.outcome import USAGE_KEYS, Cost
from airflow_provider_anyfast.core.retry import RetryPolicy


def test_costs_add_attempts_unbilled_and_usage() -> None:
    first = Cost(attempts=2, unbilled=1, usage={"total_tokens": 10, "prompt_tokens": 4})
    second = Cost(attempts=1, usage={"total_tokens": 5})
    total = first + second
    assert (total.attempts, total.unbilled, total.billable) == (3, 1, 2)
    assert total.usage["total_tokens"] == 15 and total.usage["prompt_tokens"] == 4
    assert set(total.usage) == set(USAGE_KEYS)


def test_no_answer_means_no_usage() -> None:
    nothing = Cost(attempts=1) + Cost(attempts=2)
    assert nothing.usage == {} and nothing.usage_or_none is None and nothing.attempts == 3


@pytest.mark.parametrize(
    ("rate_limited", "wait", "waited", "failures", "verdict"),
    [
        (False, 1.0, 0.0, 1, None),  # a server failure with retries left
        (False, 1.0, 0.0, 4, "exhausted"),  # max_retries=3: the 4th failure is the last
        (False, 99.0, 0.0, 1, "too_long"),  # its hint is past max_retry_wait
        (False, 99.0, 0.0, 4, "exhausted"),  # no retry left anyway: the failure itself, not the wait
        (True, 1.0, 0.0, 9, None),  # rate limits ignore max_retries ...
        (True, 1.0, 119.5, 0, "exhausted"),  # ... and run on a time budget
        (True, 99.0, 0.0, 0, "too_long"),
    ],
)
def test_the_policy_decides_every_retry(
    rate_limited: bool, wait: float, waited: float, failures: int, verdict: str | None
) -> None:
    policy = RetryPolicy(max_retries=3, max_retry_wait=60.0, rate_limit_budget=120.0)
    assert policy.verdict(rate_limited, wait, waited, failures) == verdict
    assert RetryPolicy(max_retries=0).verdict(rate_limited, wait, waited, failures) == "exhausted"
