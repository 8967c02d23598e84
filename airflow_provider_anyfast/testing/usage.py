"""Token usage the test server reports, including simulated prefix caching.

Cost and cache reports in the provider read ``usage``; the numbers here follow simple,
documented rules so tests can predict them exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from typing import Any

from airflow_provider_anyfast.testing.answers import message_text

BLOCK_CHARS = 64
REASONING_TOKENS = 16


class PrefixCache:
    """Simulates the gateway's prompt cache with hashes of 64-character message prefixes.

    Rule: the request's messages are serialized (``json.dumps(messages, ensure_ascii=False)``)
    and hashed, together with the model name, at every 64-character block boundary (only
    the first ``max_blocks`` blocks). ``cached_tokens`` is the length of the longest such
    prefix seen in an *earlier* request, divided by 4 (integer division), capped at the
    request's ``prompt_tokens``. A request with a shared system prompt therefore reports
    cached tokens from its second occurrence on. The set of hashes is bounded (oldest
    entries are forgotten first).
    """

    def __init__(self, max_blocks: int = 128, max_entries: int = 200_000) -> None:
        self._max_blocks = max_blocks
        self._max_entries = max_entries
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every prefix (``reset()`` of the server)."""
        with self._lock:
            self._seen.clear()

    def cached_chars(self, model: str, messages: list[dict[str, Any]]) -> int:
        """Characters of the longest previously-seen block prefix; records this request's prefixes."""
        text = json.dumps(messages, ensure_ascii=False)
        blocks = min(len(text) // BLOCK_CHARS, self._max_blocks)
        digest = hashlib.blake2b(model.encode() + b"\x00", digest_size=16)
        keys = []
        for i in range(blocks):
            digest.update(text[i * BLOCK_CHARS : (i + 1) * BLOCK_CHARS].encode())
            keys.append(digest.copy().digest())
        with self._lock:
            longest = 0
            for i, key in enumerate(keys):
                if key in self._seen:
                    longest = (i + 1) * BLOCK_CHARS
                    self._seen.move_to_end(key)
                else:
                    self._seen[key] = None
            while len(self._seen) > self._max_entries:
                self._seen.popitem(last=False)
        return longest


def usage_for(model: str, messages: list[dict[str, Any]], content: str | None, cached_chars: int) -> dict[str, Any]:
    """``usage`` by the server's rules: 4 characters per token, reasoning tokens for 2.5-pro.

    ``prompt_tokens = ceil(total message chars / 4)``, ``completion_tokens =
    max(1, ceil(len(content) / 4))``; models containing ``2.5-pro`` add
    ``completion_tokens_details.reasoning_tokens`` (16), counted in ``total_tokens``.
    """
    prompt = math.ceil(sum(len(message_text(m.get("content"))) for m in messages) / 4)
    completion = max(1, math.ceil(len(content or "") / 4))
    reasoning = REASONING_TOKENS if "2.5-pro" in model else 0
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion + reasoning,
        "prompt_tokens_details": {"cached_tokens": min(prompt, cached_chars // 4)},
    }
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage
