"""Pay once per distinct request: the request key, and in-run de-duplication.

Two records whose rendered requests (model, parameters, messages) are identical would
get the same answer, so only the first is sent; the others wait for it and get rows of
their own with the shared answer (``shared: true``, no usage: it was paid once).
Records that wait on an identical request in flight share its outcome, whatever it
was; a record that comes after one whose identical request succeeded reuses that
answer (the most recent ``remember`` successes are kept, so memory stays bounded).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from airflow_provider_anyfast.core.records.cache import ResultCache, cached_row
from airflow_provider_anyfast.core.records.rows import ResultRow


def request_key(body: Mapping[str, Any]) -> str:
    """A stable content hash of a request body: equal requests, equal keys."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def shared_copy(row: ResultRow, record_id: str | int) -> ResultRow:
    """The leader's outcome as another record's row: same answer, no cost of its own."""
    return replace(row, id=record_id, shared=True, cached=False, usage=None, attempts=0)


class Deduplicator:
    """Tracks which request keys are in flight, the records waiting on each, and recent answers."""

    def __init__(self, remember: int = 10_000) -> None:
        self._waiting: dict[str, list[str | int]] = {}
        self._answers: OrderedDict[str, ResultRow] = OrderedDict()
        self._remember = remember
        self.shared = 0
        self.tokens_saved = 0

    def lookup(self, key: str, record_id: str | int) -> ResultRow | None:
        """A shared row when an identical request already succeeded in this run."""
        row = self._answers.get(key)
        if row is None:
            return None
        self._answers.move_to_end(key)
        self._count(row, 1)
        return shared_copy(row, record_id)

    def _count(self, row: ResultRow, records: int) -> None:
        self.shared += records
        self.tokens_saved += records * int((row.usage or {}).get("total_tokens") or 0)

    def admit(self, key: str, record_id: str | int) -> bool:
        """True when this record should be sent; False when an identical request is already out."""
        followers = self._waiting.get(key)
        if followers is None:
            self._waiting[key] = []
            return True
        followers.append(record_id)
        return False

    def settle(self, key: str, row: ResultRow) -> list[ResultRow]:
        """The leader finished: rows for every record that waited on it."""
        followers = self._waiting.pop(key, [])
        if row.ok and self._remember:
            self._answers[key] = row
            if len(self._answers) > self._remember:
                self._answers.popitem(last=False)
        self._count(row, len(followers))
        return [shared_copy(row, record_id) for record_id in followers]


class Reuse:
    """Before a request: is its answer cached, or already on its way? After: remember it."""

    def __init__(
        self, cache: ResultCache | None = None, dedup: bool = True, accept: Callable[[Any], bool] | None = None
    ) -> None:
        self.cache = cache
        self.dedup = Deduplicator() if dedup else None
        self.accept = accept  # a cached answer the current schema rejects is a miss, not a success

    def before_send(self, record_id: str | int, body: Mapping[str, Any]) -> tuple[str, ResultRow | None, bool]:
        """(key, a ready row or None, whether to send): a record either gets a row now, waits, or is sent."""
        if self.cache is None and self.dedup is None:
            return "", None, True
        key = request_key(body)
        entry = self.cache.get(key, self.accept) if self.cache is not None else None
        if entry is not None:
            return key, cached_row(record_id, entry), False
        if self.dedup is None:
            return key, None, True
        shared = self.dedup.lookup(key, record_id)
        if shared is not None:
            return key, shared, False
        return key, None, self.dedup.admit(key, record_id)

    def after(self, key: str, row: ResultRow) -> list[ResultRow]:
        """Cache a fresh success; return the rows of records that waited on this one."""
        if not key:
            return []
        if self.cache is not None:
            self.cache.put(key, row)
        return self.dedup.settle(key, row) if self.dedup is not None else []

    def flush(self) -> None:
        if self.cache is not None:
            self.cache.flush()

    def close(self) -> None:
        """The last flush of the run's cache entries (never raises: the rows are what must be kept)."""
        if self.cache is not None:
            self.cache.close()

    def stats(self) -> dict[str, int]:
        """What reuse saved this run: requests not sent and the tokens they would have cost."""
        hits = self.cache.hits if self.cache is not None else 0
        shared = self.dedup.shared if self.dedup is not None else 0
        tokens = (self.cache.tokens_saved if self.cache is not None else 0) + (
            self.dedup.tokens_saved if self.dedup is not None else 0
        )
        return {"cache_hits": hits, "shared_records": shared, "requests_saved": hits + shared, "tokens_saved": tokens}
