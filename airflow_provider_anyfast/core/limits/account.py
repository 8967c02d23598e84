"""An account's limits for one run: shared through Redis when there is one, else per process.

Keys are scoped by the base URL's host and a hash of the token (never the token), so
every task of every DAG that uses the same account meets in the same keys, and two
accounts never do. Rate limits degrade: if Redis goes away they continue per process
(one warning). Budgets do not: see ``budget``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_anyfast.core.limits.budget import RedisBudget
from airflow_provider_anyfast.core.limits.local import LocalBucket
from airflow_provider_anyfast.core.limits.shared import RedisBucket
from airflow_provider_anyfast.core.retry import CallObserver, suggested_wait
from airflow_provider_anyfast.exceptions import AnyFastError, AnyFastRateLimitError

log = logging.getLogger("airflow_provider_anyfast.limits")

#: A job budget (one task in one DAG run) is kept this long after its last use.
JOB_BUDGET_TTL = 7 * 24 * 3600
#: A budget under a name the user picked (e.g. a month) is kept this long after its last use.
NAMED_BUDGET_TTL = 40 * 24 * 3600


class Bucket(Protocol):
    """What the engine needs of a rate bucket, local or shared."""

    def reserve(self, amount: float = 1.0) -> float: ...
    def paused_for(self) -> float: ...
    def adjust(self, amount: float) -> None: ...
    def on_success(self) -> None: ...
    def on_rate_limited(self, hint: float | None) -> None: ...


def account_key(base_url: str | None, token: str | None) -> str:
    """``anyfast:<host>:<token hash>``: the same for every task on the account; the token is not in it."""
    parts = urlsplit(base_url if base_url and "://" in base_url else f"//{base_url or ''}")
    host, port = parts.hostname or "default", parts.port
    digest = hashlib.sha256((token or "").encode()).hexdigest()[:16]
    return f"anyfast:{host}{f':{port}' if port else ''}:{digest}"


class FallbackBucket:
    """A shared bucket that turns into a local one, with one warning, when Redis fails."""

    def __init__(self, shared: RedisBucket, local: LocalBucket) -> None:
        self.shared: RedisBucket | None = shared
        self.local = local
        self._lock = threading.Lock()

    def _call(self, name: str, *args: Any) -> Any:
        shared = self.shared
        if shared is not None:
            try:
                return getattr(shared, name)(*args)
            except Exception as exc:  # any client error: redis.ConnectionError, TimeoutError, ...
                with self._lock:
                    if self.shared is not None:
                        self.shared = None
                        log.warning(
                            "Shared rate limit in Redis (%s) unreachable (%s: %s): this task falls back to "
                            "limiting itself alone for the rest of the run",
                            shared.key, type(exc).__name__, exc,
                        )  # fmt: skip
        return getattr(self.local, name)(*args)

    def reserve(self, amount: float = 1.0) -> float:
        return float(self._call("reserve", amount))

    def paused_for(self) -> float:
        return float(self._call("paused_for"))

    def adjust(self, amount: float) -> None:
        self._call("adjust", amount)

    def on_success(self) -> None:
        self._call("on_success")

    def on_rate_limited(self, hint: float | None) -> None:
        self._call("on_rate_limited", hint)


@dataclass(frozen=True)
class AccountLimits:
    """The connection's limits: account rates, and where shared state lives (``redis``: a client, or None)."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    redis: Any = None
    key: str = "anyfast:local"
    budget_scope: str | None = None
    named_budget: bool = False

    @property
    def shared(self) -> bool:
        return self.redis is not None

    def requests_bucket(self) -> Bucket:
        """The account's request pacer: adapts to 429s even with no configured limit."""
        local = LocalBucket(self.requests_per_minute, adaptive=True)
        if self.redis is None:
            return local
        return FallbackBucket(RedisBucket(self.redis, f"{self.key}:requests", self.requests_per_minute,
                                          adaptive=True), local)  # fmt: skip

    def tokens_bucket(self) -> Bucket | None:
        if not self.tokens_per_minute:
            return None
        local = LocalBucket(self.tokens_per_minute)
        if self.redis is None:
            return local
        return FallbackBucket(RedisBucket(self.redis, f"{self.key}:tokens", self.tokens_per_minute), local)

    def budget_key(self) -> str | None:
        if self.redis is None or not self.budget_scope:
            return None
        return f"{self.key}:budget:{self.budget_scope}"

    def budget(self, field: str, maximum: float | None) -> RedisBudget | None:
        """The job's shared budget for ``field`` (tokens, cost); None when budgets are per instance."""
        key = self.budget_key()
        if key is None or maximum is None:
            return None
        ttl = NAMED_BUDGET_TTL if self.named_budget else JOB_BUDGET_TTL
        return RedisBudget(self.redis, key, field, maximum, ttl=ttl)


def acquire(bucket: Bucket, amount: float, cancel: threading.Event | None) -> None:
    """Wait for ``amount`` from ``bucket``, and for any pause that began meanwhile (or until ``cancel``)."""
    wait = bucket.reserve(amount)
    while wait > 0:
        if cancel is None:
            time.sleep(wait)
        elif cancel.wait(wait):
            return
        wait = bucket.paused_for()


def pacing_hooks(pace: Bucket, tokens: Bucket | None, estimate: int) -> CallObserver:
    """An observer that puts one call (every attempt) under the account's limits: for the hook's single calls."""

    def before() -> None:
        acquire(pace, 1, None)
        if tokens is not None:
            acquire(tokens, estimate, None)

    def on_retry(exc: AnyFastError, wait: float) -> None:
        if isinstance(exc, AnyFastRateLimitError):
            pace.on_rate_limited(suggested_wait(exc))  # the wait the retry policy takes from the answer

    return CallObserver(before_attempt=before, on_retry=on_retry)
