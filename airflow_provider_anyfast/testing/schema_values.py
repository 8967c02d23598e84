"""Deterministic example values for a JSON schema, for the test server's JSON mode.

The values must validate against the schema (tests check them with ``jsonschema``) and read
sensibly in a demo: given the record's text, values are derived from it (``derive``); without
it, strings name their field and quote a few words of the prompt.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import re
from typing import Any

from airflow_provider_anyfast.testing import derive

_MAX_DEPTH = 12
_DECODER = json.JSONDecoder()


def _hash_int(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest(), "big")


@functools.lru_cache(maxsize=512)
def find_schema_in_text(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` with a ``properties`` or ``type`` key.

    Clients put the schema into the prompt (often after a line ``JSON schema:``), surrounded
    by prose, so every ``{`` is tried with ``raw_decode``. Cached: a batch repeats the prompt.
    """
    start = text.find("{")
    while start != -1:
        try:
            value, _ = _DECODER.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict) and ("properties" in value or "type" in value):
            return value
        start = text.find("{", start + 1)
    return None


def label_of(name: str) -> str:
    """``user_name`` / ``userName`` -> ``User name``: the field name as words."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    words = " ".join(spaced.split()).lower()
    return words[:1].upper() + words[1:] if words else "Answer"


class SchemaFaker:
    """Builds one value per schema from a seed (a hash of the messages) and prompt words."""

    def __init__(self, root: dict[str, Any], seed: str, words: str, text: str = "") -> None:
        self._root = root
        self._seed = seed
        self._words = words
        self._text = text  # the record's whole prompt: enums and flags look at all of it
        self._content = derive.content(text) if text else ""
        self._numbers = derive.numbers(self._content)

    def value(self) -> Any:
        """The example value for the root schema."""
        return self._make(self._root, "answer", "$", 0)

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self._root
        if not ref.startswith("#"):
            return {}
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}

    def _pick(self, path: str, count: int) -> int:
        return _hash_int(self._seed, path) % count if count > 0 else 0

    def _make(self, schema: Any, name: str, path: str, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return None
        if "$ref" in schema:
            merged = {**self._resolve(str(schema["$ref"])), **{k: v for k, v in schema.items() if k != "$ref"}}
            return self._make(merged, name, path, depth + 1)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if "default" in schema:
            return copy.deepcopy(schema["default"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            chosen = derive.enum_choice(schema["enum"], self._text) if self._text else None
            if chosen is not None:
                return copy.deepcopy(chosen)
            return copy.deepcopy(schema["enum"][self._pick(path, len(schema["enum"]))])
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                chosen = next((o for o in options if not _is_null(o, self)), options[0])
                return self._make(chosen, name, path, depth + 1)
        if isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                if isinstance(part, dict):
                    resolved = self._resolve(str(part["$ref"])) if "$ref" in part else part
                    merged = {**resolved, **merged}
            return self._make(merged, name, path, depth + 1)
        kind = _type_of(schema)
        if kind == "object":
            return self._object(schema, path, depth)
        if kind == "array":
            return self._array(schema, name, path, depth)
        if kind == "integer":
            return self._integer(schema, path)
        if kind == "number":
            return self._number(schema, path)
        if kind == "boolean":
            said = derive.flag(name, self._text) if self._text else None
            return said if said is not None else self._pick(path, 2) == 0
        if kind == "null":
            return None
        return self._string(schema, name, path)

    def _object(self, schema: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        required = set(schema.get("required") or [])
        pair = self._pair(props, path)
        if pair is not None:
            return pair
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if depth > _MAX_DEPTH // 2 and key not in required:
                continue  # keep recursive models (trees) finite
            out[key] = self._make(sub, key, f"{path}.{key}", depth + 1)
        return out

    def _pair(self, props: dict[str, Any], path: str) -> dict[str, Any] | None:
        """An array item with string ``name`` and ``value`` (attributes): a clause of the text."""
        match = re.search(r"\[(\d+)\]$", path)
        if not self._content or match is None or set(props) != {"name", "value"}:
            return None
        if any(_type_of(sub) != "string" for sub in props.values() if isinstance(sub, dict)):
            return None
        found = derive.clause_pair(self._content, int(match.group(1)))
        if found is None:
            return None
        return {"name": self._fit(found[0], props["name"]), "value": self._fit(found[1], props["value"])}

    def _derived_number(self, low: float | None, high: float | None, integer: bool) -> float | None:
        for n in self._numbers:
            if (low is None or n >= low) and (high is None or n <= high) and (not integer or n.is_integer()):
                self._numbers.remove(n)
                return n
        return None

    def _array(self, schema: dict[str, Any], name: str, path: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        count = max(low, 0 if depth > _MAX_DEPTH // 2 else 2)
        if isinstance(high, int):
            count = min(count, high)
        prefix: list[Any] = schema["prefixItems"] if isinstance(schema.get("prefixItems"), list) else []
        items = schema.get("items", {})
        count = max(count, len(prefix)) if items is not False else len(prefix)
        out = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            out.append(self._make(sub, f"{name} {i + 1}", f"{path}[{i}]", depth + 1))
        if schema.get("uniqueItems"):
            unique = {json.dumps(v, sort_keys=True): v for v in out}
            out = list(unique.values())
        return out

    def _integer(self, schema: dict[str, Any], path: str) -> int:
        low = _bound(schema, "minimum", "exclusiveMinimum", 1)
        high = _bound(schema, "maximum", "exclusiveMaximum", -1)
        derived = self._derived_number(low, high, integer=True)
        if derived is not None:
            return int(derived)
        hi = math.floor(high) if high is not None else None
        lo = math.ceil(low) if low is not None else (0 if hi is None or hi >= 0 else hi - 100)
        if hi is None:
            hi = lo + 100
        return lo + self._pick(path, hi - lo + 1) if hi >= lo else lo

    def _number(self, schema: dict[str, Any], path: str) -> float:
        ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        low = schema.get("minimum", ex_low)
        high = schema.get("maximum", ex_high)
        derived = self._derived_number(
            None if low is None else float(low), None if high is None else float(high), integer=False
        )
        if derived is not None and derived != ex_low and derived != ex_high:
            return derived
        hi = float(high) if high is not None else None
        lo = float(low) if low is not None else (0.0 if hi is None or hi >= 0 else hi - 100.0)
        if hi is None:
            hi = lo + 100.0
        value = lo + (hi - lo) * ((self._pick(path, 998) + 1) / 1000)
        rounded = round(value, 2)
        inside = lo <= rounded <= hi and (ex_low is None or rounded > ex_low) and (ex_high is None or rounded < ex_high)
        return rounded if inside else value

    def _string(self, schema: dict[str, Any], name: str, path: str) -> str:
        fmt = schema.get("format")
        n = self._pick(path, 28) + 1
        special = {
            "date-time": f"2024-01-{n:02d}T12:00:00Z",
            "date": f"2024-01-{n:02d}",
            "time": "12:00:00",
            "email": f"user{n}@example.com",
            "uri": f"https://example.com/{n}",
            "uuid": f"00000000-0000-4000-8000-{n:012d}",
        }
        text = special.get(str(fmt)) or self._derived_text(schema, name)
        text = text or f"{label_of(name)} of: {self._words}".strip()
        return self._fit(text, schema)

    def _derived_text(self, schema: dict[str, Any], name: str) -> str | None:
        """A string read from the record's text, chosen by the field's name."""
        if not self._content:
            return None
        lname = name.lower()
        limit = min(int(schema.get("maxLength", 200)), 200)
        item = re.search(r" (\d+)$", name)  # the n-th string of an array: the n-th sentence
        if "lang" in lname:
            return derive.language_value(self._content, lname, schema)
        if item is not None:
            found = derive.sentences(derive.body(self._content))
            index = int(item.group(1)) - 1
            return found[index][:limit] if index < len(found) else None
        if any(k in lname for k in ("title", "headline", "subject", "name")):
            return derive.first_line(self._content, min(limit, 80))
        if any(k in lname for k in ("summary", "description", "abstract", "overview", "reason", "explanation",
                                    "text", "body", "comment", "note")):  # fmt: skip
            return derive.first_sentences(derive.body(self._content), limit)
        return " ".join(self._content.split()[:6])

    @staticmethod
    def _fit(text: str, schema: Any) -> str:
        schema = schema if isinstance(schema, dict) else {}
        min_len, max_len = int(schema.get("minLength", 0)), schema.get("maxLength")
        if len(text) < min_len:
            text = text + "." * (min_len - len(text))
        if isinstance(max_len, int) and len(text) > max_len:
            text = text[:max_len]
        return text


def _is_null(schema: Any, faker: SchemaFaker) -> bool:
    if isinstance(schema, dict) and "$ref" in schema:
        schema = faker._resolve(str(schema["$ref"]))
    return isinstance(schema, dict) and schema.get("type") == "null"


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, step: int) -> float | None:
    if isinstance(schema.get(inclusive), int | float):
        return float(schema[inclusive])
    if isinstance(schema.get(exclusive), int | float):
        return float(schema[exclusive]) + step
    return None
