"""A rate bucket that can pause and adapt, kept in this process.

The same algorithm as the Redis one in ``shared`` (read that module's Lua side by side):
a caller reserves its slot and sleeps outside the lock until it comes. A 429 with a
hint pauses every caller until then; a 429 without one cuts the rate to a little under
the success rate just measured (the limit the server really enforces), and each success
grows it back by about 1 % a second, up to the configured limit, if any.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

#: A cut sets the rate to this share of the measured success rate.
CUT_TO = 0.95
#: Each success adds this many requests per second: the rate grows ~1 % a second at any scale.
STEP = 0.01
#: Successes counted over this many seconds to measure what the server lets through.
WINDOW = 5.0
#: One burst of 429s is one signal: at most one cut per this many seconds.
COOLDOWN = 1.0
#: The rate is never cut below one request a minute.
MIN_RATE = 1.0 / 60.0


class LocalBucket:
    """``max_per_minute`` units a minute (None: unknown until a 429 teaches it), burst of one second."""

    def __init__(
        self,
        max_per_minute: float | None,
        *,
        adaptive: bool = False,
        clock: Callable[[], float] = time.monotonic,
        burst_seconds: float = 1.0,
    ) -> None:
        if max_per_minute is not None and max_per_minute <= 0:
            raise ValueError("a rate limit must be > 0 per minute")
        self.max_rate = max_per_minute / 60.0 if max_per_minute else None
        self.rate = self.max_rate  # per second; None: not paced
        self.adaptive = adaptive
        self.cuts = 0
        self._burst = burst_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = clock()
        self._level = self._capacity()
        self._pause_until = float("-inf")
        self._last_cut = float("-inf")
        self._first_ok: float | None = None
        self._oks: deque[float] = deque()

    def _capacity(self) -> float:
        return max(1.0, (self.rate or 0.0) * self._burst)

    def _refill(self, now: float) -> None:
        if self.rate and now > self._stamp:
            self._level = min(self._capacity(), self._level + (now - self._stamp) * self.rate)
            self._stamp = now

    def reserve(self, amount: float = 1.0) -> float:
        """Take ``amount`` now (the level may go below zero); return how long to wait first."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._pause_until - now)
            if not self.rate:
                return wait
            self._refill(now)
            self._level -= amount
            return max(wait, (self._stamp - now) + max(0.0, -self._level) / self.rate)

    def paused_for(self) -> float:
        """Seconds left of a pause a 429 asked for (0 when not paused)."""
        with self._lock:
            return max(0.0, self._pause_until - self._clock())

    def adjust(self, amount: float) -> None:
        """Correct an estimate once the real cost is known (positive takes more, negative gives back)."""
        with self._lock:
            self._level = min(self._capacity(), self._level - amount)

    def pause(self, seconds: float) -> None:
        """Nobody sends for ``seconds``; afterwards the bucket starts empty, so they do not all send at once."""
        with self._lock:
            now = self._clock()
            until = now + seconds
            self._pause_until = max(self._pause_until, until)
            if self.rate:
                self._refill(now)
                self._level = min(self._level, 0.0)
                self._stamp = max(self._stamp, until)

    def on_success(self) -> None:
        if not self.adaptive:
            return
        with self._lock:
            now = self._clock()
            self._oks.append(now)
            while self._oks and self._oks[0] < now - WINDOW:
                self._oks.popleft()
            if self._first_ok is None:
                self._first_ok = now
            if self.rate:
                self._refill(now)
                self.rate = self.rate + STEP if self.max_rate is None else min(self.max_rate, self.rate + STEP)

    def on_rate_limited(self, hint: float | None) -> None:
        """A 429: pause everyone for the server's hint, else cut the rate (once per burst)."""
        if hint:
            self.pause(hint)
            return
        if not self.adaptive:
            return
        with self._lock:
            now = self._clock()
            if now - self._last_cut < COOLDOWN:
                return
            seen = sum(1 for t in self._oks if t >= now - WINDOW)
            span = max(1.0, min(WINDOW, now - (self._first_ok if self._first_ok is not None else now)))
            self._refill(now)
            self.rate = cut_rate(self.rate, seen / span)
            self._last_cut = now
            self.cuts += 1 if seen else 0


def cut_rate(rate: float | None, measured: float) -> float | None:
    """The rate after a 429 without a hint: just under what got through, and under the current one.

    When nothing got through (a storm, a quota period) there is no limit to learn: the rate
    stays, and each request's own backoff waits the storm out.
    """
    if measured <= 0:
        return rate
    new = CUT_TO * measured
    if rate:  # a 429 says the current rate is too high, even when a burst inflated what was measured
        new = min(new, CUT_TO * rate)
    return max(MIN_RATE, new)
