"""Tell a JSON schema from a dict that only looks like one.

``{"category": "string", "urgent": "boolean"}`` is a valid JSON schema to a validator
(unknown keywords are ignored), so it accepts every answer and nothing is checked. A
schema must use at least one schema keyword at its top level; the error shows the
schema the user most likely meant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema

from airflow_provider_anyfast.exceptions import AnyFastConfigError

#: Keywords that only describe (a schema made only of these validates nothing).
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "$id", "$schema", "$anchor"})
_TYPE_NAMES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})


def schema_keywords(schema: Mapping[str, Any]) -> frozenset[str]:
    """The keywords the schema's draft knows (type, properties, enum...), besides annotations."""
    cls = jsonschema.validators.validator_for(dict(schema))
    return frozenset(cls.VALIDATORS) | {"$defs", "definitions"}


def suggested_schema(shape: Mapping[str, Any]) -> dict[str, Any]:
    """The object schema a ``{"field": "type"}`` dict most likely means."""
    properties = {
        str(name): {"type": kind} if isinstance(kind, str) and kind in _TYPE_NAMES else {"type": "string"}
        for name, kind in shape.items()
    }
    return {"type": "object", "properties": properties, "required": list(properties)}


def check_schema_shape(schema: Mapping[str, Any]) -> None:
    """Refuse a non-empty dict without a single validating keyword at its top level."""
    keys = {str(key) for key in schema}
    if not keys or keys & schema_keywords(schema):
        return
    if keys <= _ANNOTATIONS:
        return  # only a title or description: validates nothing, but says so itself
    example = json.dumps(suggested_schema(schema))
    raise AnyFastConfigError(
        f"output_schema {json.dumps(dict(schema), default=str)[:200]} is not a JSON schema: it has no schema "
        "keyword (type, properties, enum, ...) at its top level, so no answer would be checked. A JSON schema "
        f"for those fields looks like: {example} (or pass a pydantic model class)."
    )
