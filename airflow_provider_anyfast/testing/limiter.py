"""A server-side rate limit the client is not told about, like a gateway's or Gemini's own.

A token bucket of ``rpm`` requests a minute with a burst of ``burst_seconds`` worth: a
request that finds it empty is answered 429 with no retry hint (new-api relays upstream
429s without one). Pacing benchmarks and tests measure goodput and 429s against it.
"""

from __future__ import annotations

import threading
import time


class ServerRateLimit:
    """Admit at most ``rpm`` chat requests a minute (plus a burst); ``admit()`` says yes or no."""

    def __init__(self, rpm: float, burst_seconds: float = 1.0) -> None:
        if rpm <= 0 or burst_seconds < 0:
            raise ValueError("rate_limit needs rpm > 0 and burst_seconds >= 0")
        self.rpm = float(rpm)
        self.rate = rpm / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self._level = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._level < 1.0:
                return False
            self._level -= 1.0
            return True
