"""The test server's mutable state: request log and fault plan, shared by all handler threads.

Tests drive the plan from their own thread while requests arrive on others, so every
read and write goes through one lock.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_anyfast.testing.faults import FAULT_KINDS, Fault
from airflow_provider_anyfast.testing.usage import PrefixCache


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

    def __init__(self, seed: int = 0, latency: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._rules: list[_Rule] = []
        self._queue: deque[Fault] = deque()
        self._rates: list[tuple[str, float]] = []
        self._rng = random.Random(seed)
        self.latency = latency
        self.prefix_cache = PrefixCache()

    def reset(self) -> None:
        """Clear the log, rules, queued and random faults, and the prefix cache."""
        with self._lock:
            self._log.clear()
            self._rules.clear()
            self._queue.clear()
            self._rates = []
        self.prefix_cache.clear()

    def record(self, entry: RequestRecord) -> None:
        """Append one request to the log."""
        with self._lock:
            self._log.append(entry)

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

    def set_random_faults(self, rates: dict[str, float], seed: int | None = None) -> None:
        """Draw a fault kind per chat request with these probabilities (their sum <= 1)."""
        for kind, rate in rates.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}")
            if not 0 <= rate <= 1:
                raise ValueError(f"rate of {kind!r} must be in [0, 1], got {rate!r}")
        if sum(rates.values()) > 1 + 1e-9:
            raise ValueError("random fault rates must sum to at most 1")
        with self._lock:
            self._rates = [(kind, float(rate)) for kind, rate in rates.items() if rate > 0]
            if seed is not None:
                self._rng = random.Random(seed)

    def choose_fault(self, text: str) -> Fault | None:
        """The fault for one chat request: rules first, then the queue, then a random draw."""
        with self._lock:
            for rule in self._rules:
                if rule.remaining != 0 and rule.contains in text:
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule.fault
            if self._queue:
                return self._queue.popleft()
            if self._rates:
                draw = self._rng.random()
                total = 0.0
                for kind, rate in self._rates:
                    total += rate
                    if draw < total:
                        return Fault(kind, delay=1.0) if kind == "slow" else Fault(kind)
        return None
