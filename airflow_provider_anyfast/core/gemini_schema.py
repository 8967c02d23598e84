"""The JSON schema Gemini accepts for ``response_format: json_schema``.

Gateways pass a schema to Gemini's ``responseSchema`` almost as given, and Gemini answers
400 to ``$defs``/``$ref`` (any pydantic model with a nested model or an enum has them),
to ``"type": "null"`` unions and to keywords outside its OpenAPI subset. So the schema
sent is rewritten: references inlined, optional fields as ``nullable``, unknown keywords
dropped. The answer is still validated against the original schema, so nothing the
user asked for is lost, only not told to the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_anyfast.exceptions import AnyFastConfigError

#: Keywords of Gemini's schema subset; everything else is dropped from what is sent.
KEPT = frozenset(
    {
        "type", "format", "description", "nullable", "enum", "items", "properties", "required", "minItems",
        "maxItems", "minimum", "maximum", "minLength", "maxLength", "pattern", "anyOf", "propertyOrdering",
        "minProperties", "maxProperties",
    }
)  # fmt: skip
_MAX_DEPTH = 32


def gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` rewritten for Gemini: inlined ``$ref``, ``nullable`` for null unions, known keywords only."""
    defs = {**dict(schema.get("definitions") or {}), **dict(schema.get("$defs") or {})}
    return _rewrite(schema, defs, 0)


def _resolve(ref: str, defs: Mapping[str, Any]) -> Mapping[str, Any]:
    name = ref.rsplit("/", 1)[-1]
    if not ref.startswith(("#/$defs/", "#/definitions/")) or name not in defs:
        raise AnyFastConfigError(f"output_schema: cannot inline the reference {ref!r} for use_json_schema")
    return defs[name]


def _rewrite(node: Any, defs: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(node, Mapping):
        return node
    if depth > _MAX_DEPTH:
        raise AnyFastConfigError(
            "output_schema is recursive (a model that contains itself): Gemini's schema cannot express it; "
            "use use_json_schema=False (the schema still goes in the prompt and is still validated)"
        )
    node = dict(node)
    if "$ref" in node:
        node = {**_resolve(str(node.pop("$ref")), defs), **node}
    all_of = node.pop("allOf", None)
    if isinstance(all_of, list):
        for part in all_of:
            part = dict(part) if isinstance(part, Mapping) else {}
            node = {**(_resolve(str(part.pop("$ref")), defs) if "$ref" in part else {}), **part, **node}
    out: dict[str, Any] = {}
    nullable = False
    types = node.get("type")
    if isinstance(types, list):
        nullable = "null" in types
        rest = [t for t in types if t != "null"]
        node["type"] = rest[0] if len(rest) == 1 else None
        if len(rest) > 1:
            node["anyOf"] = [{"type": t} for t in rest]
    if "const" in node and "enum" not in node:
        node["enum"] = [node["const"]]
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list):
            kept = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            nullable = nullable or len(kept) < len(options)
            if len(kept) == 1:
                node = {**{k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}, **dict(kept[0])}
                return _with_nullable(_rewrite(node, defs, depth + 1), nullable)
            node.pop(key)
            node["anyOf"] = kept
    for key, value in node.items():
        if key not in KEPT or value is None:
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {name: _rewrite(sub, defs, depth + 1) for name, sub in value.items()}
        elif key == "items":
            out[key] = _rewrite(value, defs, depth + 1)
        elif key == "anyOf":
            out[key] = [_rewrite(sub, defs, depth + 1) for sub in value]
        elif key == "enum" and isinstance(value, list):
            out[key] = [v for v in value if v is not None]
            nullable = nullable or None in value
        else:
            out[key] = value
    if "minimum" not in out and isinstance(node.get("exclusiveMinimum"), int | float):
        out["minimum"] = node["exclusiveMinimum"]  # close enough to guide the model; validation is exact
    if "maximum" not in out and isinstance(node.get("exclusiveMaximum"), int | float):
        out["maximum"] = node["exclusiveMaximum"]
    return _with_nullable(out, nullable)


def _with_nullable(node: Any, nullable: bool) -> Any:
    if nullable and isinstance(node, dict):
        node["nullable"] = True
    return node
