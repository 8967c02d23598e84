"""Client-side limits: token buckets for rates, an adaptive concurrency cap, a token budget.

Each is thread-safe and small. The buckets schedule rather than poll: a caller reserves
its slot under a lock and then sleeps outside it until the slot's time, so many threads
waiting on one bucket cost nothing and the measured rate stays within a burst of one
second of the configured one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateBucket:
    """``rate_per_minute`` units per minute, with a burst of at most one second's worth."""

    def __init__(
        self, rate_per_minute: float, *, clock: Callable[[], float] = time.monotonic, burst_seconds: float = 1.0
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("a rate limit must be > 0 per minute")
        self.rate = rate_per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._level = self.capacity
        self._stamp = clock()

    def reserve(self, amount: float = 1.0) -> float:
        """Take ``amount`` now (the level may go below zero); return how long to wait first."""
        with self._lock:
            now = self._clock()
            self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
            self._stamp = now
            self._level -= amount
            return 0.0 if self._level >= 0 else -self._level / self.rate

    def acquire(self, amount: float = 1.0, cancel: threading.Event | None = None) -> None:
        """Block until ``amount`` may be spent (or until ``cancel`` is set)."""
        wait = self.reserve(amount)
        if wait > 0:
            if cancel is None:
                time.sleep(wait)
            else:
                cancel.wait(wait)

    def adjust(self, amount: float) -> None:
        """Correct an estimate once the real cost is known (positive takes more, negative gives back)."""
        with self._lock:
            self._level = min(self.capacity, self._level - amount)


class AdaptiveConcurrency:
    """A concurrency cap that halves on a rate-limit signal and grows back by one per window.

    Additive increase, multiplicative decrease, as in TCP: under a sustained 429 period
    it settles where the server stops refusing, and climbs back when the period ends.
    """

    def __init__(self, maximum: int, *, clock: Callable[[], float] = time.monotonic, cooldown: float = 1.0) -> None:
        if maximum < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.maximum = maximum
        self.limit = maximum
        self.decreases = 0
        self._clock = clock
        self._cooldown = cooldown
        self._last_decrease = float("-inf")
        self._successes = 0
        self._lock = threading.Lock()

    def on_rate_limited(self) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last_decrease < self._cooldown:
                return  # one burst of 429s is one signal, not one per request
            self._last_decrease = now
            self.limit = max(1, self.limit // 2)
            self._successes = 0
            self.decreases += 1

    def on_success(self) -> None:
        with self._lock:
            if self.limit >= self.maximum:
                return
            self._successes += 1
            if self._successes >= self.limit:
                self.limit += 1
                self._successes = 0


class TokenBudget:
    """A run's budget (tokens, or cost): what is spent plus in-flight estimates must stay under it."""

    def __init__(self, maximum: float | None, already_spent: float = 0) -> None:
        self.maximum = maximum
        self.spent = already_spent
        self._reserved: float = 0
        self._lock = threading.Lock()

    def try_reserve(self, estimate: float) -> bool:
        """Reserve an estimate for one request; False once the budget cannot cover it."""
        with self._lock:
            if self.maximum is not None and self.spent + self._reserved >= self.maximum:
                return False
            self._reserved += estimate
            return True

    def settle(self, estimate: float, actual: float) -> None:
        """Replace a reservation with what the request really cost."""
        with self._lock:
            self._reserved -= estimate
            self.spent += actual

    @property
    def exhausted(self) -> bool:
        return self.maximum is not None and self.spent >= self.maximum
