"""The test server's mutable state: request log and fault plan, shared by all handler threads.

Tests drive the plan from their own thread while requests arrive on others, so every
read and write goes through one lock. Tests wait on that lock's condition (a request
logged, a request held) instead of sleeping.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_anyfast.testing.faults import FAULT_KINDS, Fault
from airflow_provider_anyfast.testing.limiter import ServerRateLimit
from airflow_provider_anyfast.testing.profiles import check_profile
from airflow_provider_anyfast.testing.usage import PrefixCache

DEFAULT_SLOW_DELAY = 1.0
#: The ways a 429 tells the client how long to wait, one per random ``rate_limit`` draw with hints.
RETRY_HINT_FORMS = ("retry_after", "retry_after_ms", "retry_delay")


@dataclass(frozen=True)
class RequestRecord:
    """One answered (or dropped: ``status == 0``) request. Never holds the token."""

    time: float
    wall_time: float
    method: str
    path: str
    status: int
    fault: str | None
    body: Any
    auth_ok: bool
    record_text: str | None

    def to_json(self, bodies: bool = False) -> dict[str, Any]:
        """The record for ``GET /_control/requests`` (the body only when asked for)."""
        data = asdict(self)
        if not bodies:
            del data["body"]
        return data


@dataclass
class _Rule:
    contains: str
    fault: Fault
    remaining: int | None


class ServerState:
    """Request log, fault rules, fault queue, random faults, latency and the prefix cache."""

    def __init__(self, seed: int = 0, latency: float = 0.0, profile: str = "anyfast") -> None:
        self.profile = self.default_profile = check_profile(profile)  # whose shapes are answered (profiles.py)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._log: list[RequestRecord] = []
        self._rules: list[_Rule] = []
        self._queue: deque[Fault] = deque()
        self._rates: list[tuple[str, float]] = []
        self._retry_hints: tuple[float, float] | None = None
        self._slow_delay = DEFAULT_SLOW_DELAY
        self._rng = random.Random(seed)
        self._held = 0
        self._released = False
        self._epoch = 0
        self._storm: tuple[float, Fault] | None = None
        self.latency = latency
        self.prefix_cache = PrefixCache()
        self.rate_limit: ServerRateLimit | None = None

    def reset(self) -> None:
        """Clear the log, rules, queued and random faults, held requests and the prefix cache."""
        with self._lock:
            self._log.clear()
            self._rules.clear()
            self._queue.clear()
            self._rates = []
            self._retry_hints = None
            self._slow_delay = DEFAULT_SLOW_DELAY
            self._held = 0
            self._released = False
            self._storm = None
            self._epoch += 1  # requests held before the reset are let go
            self.profile = self.default_profile
            self.rate_limit = None
            self._changed.notify_all()
        self.prefix_cache.clear()

    def record(self, entry: RequestRecord) -> None:
        """Append one request to the log (and wake whoever waits for it)."""
        with self._lock:
            self._log.append(entry)
            self._changed.notify_all()

    def wait_for_requests(self, n: int, timeout: float, path: str | None = "/v1/chat/completions") -> int:
        """Block until ``n`` requests to ``path`` are logged; return the count, TimeoutError if not in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while (count := sum(1 for r in self._log if path is None or r.path == path)) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{count} request(s) to {path} logged within {timeout}s, wanted {n}")
                self._changed.wait(left)
            return count

    def hold(self, stopping: threading.Event) -> None:
        """Called by a ``hold`` request: count it, then wait for ``release`` (or a reset, or ``wake`` on stop)."""
        with self._lock:
            self._held += 1
            epoch = self._epoch
            self._changed.notify_all()
            while not self._released and self._epoch == epoch and not stopping.is_set():
                self._changed.wait()

    def wake(self) -> None:
        """Wake every waiter so it re-checks its condition (the server is stopping)."""
        with self._lock:
            self._changed.notify_all()

    def wait_for_held(self, n: int, timeout: float) -> None:
        """Block until ``n`` requests are held; TimeoutError if not in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._held < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self._held} request(s) held within {timeout}s, wanted {n}")
                self._changed.wait(left)

    def release(self) -> None:
        """Let every held request (and every later ``hold`` one) be answered normally."""
        with self._lock:
            self._released = True
            self._changed.notify_all()

    def records(self) -> list[RequestRecord]:
        """A snapshot copy of the log."""
        with self._lock:
            return list(self._log)

    def count(self, path: str | None) -> int:
        """How many logged requests went to ``path`` (all of them for None)."""
        with self._lock:
            return sum(1 for r in self._log if path is None or r.path == path)

    def push_fault(self, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` chat requests (FIFO)."""
        if times < 0:
            raise ValueError("times must be >= 0")
        with self._lock:
            self._queue.extend([fault] * times)

    def add_rule(self, contains: str, fault: Fault, times: int | None = None) -> None:
        """Give ``fault`` to requests whose message text contains ``contains``."""
        if times is not None and times < 0:
            raise ValueError("times must be >= 0 or None")
        with self._lock:
            self._rules.append(_Rule(contains, fault, times))

    def set_random_faults(
        self,
        rates: dict[str, float],
        seed: int | None = None,
        *,
        retry_hints: tuple[float, float] | None = None,
        slow_delay: float = DEFAULT_SLOW_DELAY,
    ) -> None:
        """Draw a fault kind per chat request with these probabilities (their sum <= 1).

        With ``retry_hints=(low, high)``, a ``rate_limit`` draw also picks, from the same
        seeded RNG, one of the three hint forms (``Retry-After`` seconds, ``retry-after-ms``,
        a Gemini ``retryDelay`` body) and a wait between ``low`` and ``high`` seconds.
        ``slow`` draws answer after ``slow_delay`` seconds.
        """
        if retry_hints is not None and not 0 <= retry_hints[0] <= retry_hints[1]:
            raise ValueError(f"retry_hints must be (low, high) with 0 <= low <= high, got {retry_hints!r}")
        if slow_delay < 0:
            raise ValueError("slow_delay must be >= 0")
        for kind, rate in rates.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}")
            if not 0 <= rate <= 1:
                raise ValueError(f"rate of {kind!r} must be in [0, 1], got {rate!r}")
        if sum(rates.values()) > 1 + 1e-9:
            raise ValueError("random fault rates must sum to at most 1")
        with self._lock:
            self._rates = [(kind, float(rate)) for kind, rate in rates.items() if rate > 0]
            self._retry_hints = None if retry_hints is None else (float(retry_hints[0]), float(retry_hints[1]))
            self._slow_delay = float(slow_delay)
            if seed is not None:
                self._rng = random.Random(seed)

    def storm(self, seconds: float, fault: Fault) -> None:
        """Every chat request in the next ``seconds`` (wall clock) gets ``fault``: a rate-limit storm."""
        with self._lock:
            self._storm = (time.monotonic() + seconds, fault)

    def choose_fault(self, text: str) -> Fault | None:
        """The fault for one chat request: a storm, rules, the queue, the rate limit, then a random draw."""
        with self._lock:
            if self._storm is not None and time.monotonic() < self._storm[0]:
                return self._storm[1]
            for rule in self._rules:
                if rule.remaining != 0 and rule.contains in text:
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule.fault
            if self._queue:
                return self._queue.popleft()
            if self.rate_limit is not None and not self.rate_limit.admit():
                return Fault("rate_limit")
            if self._rates:
                draw = self._rng.random()
                total = 0.0
                for kind, rate in self._rates:
                    total += rate
                    if draw < total:
                        return self._random_fault(kind)
        return None

    def _random_fault(self, kind: str) -> Fault:
        """The fault of one random draw (the lock is held: the RNG sequence stays seeded)."""
        if kind == "slow":
            return Fault(kind, delay=self._slow_delay)
        if kind != "rate_limit" or self._retry_hints is None:
            return Fault(kind)
        form = self._rng.choice(RETRY_HINT_FORMS)
        wait = round(self._rng.uniform(*self._retry_hints), 3)
        if form == "retry_after":
            return Fault(kind, retry_after=wait)
        if form == "retry_after_ms":
            return Fault(kind, retry_after_ms=max(0, round(wait * 1000)))
        return Fault(kind, retry_delay=f"{wait}s")
