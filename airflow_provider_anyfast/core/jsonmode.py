"""JSON mode: tell the model the schema, find the JSON in its answer, validate it.

Gemini in JSON mode sometimes wraps the JSON in a Markdown fence or adds a sentence of
prose around it: we strip those. It never gets to "repair" cut-off JSON: a ``length``
finish is a truncation error, decided before any parsing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError

from airflow_provider_anyfast.core.gemini_schema import gemini_schema
from airflow_provider_anyfast.core.schema_shape import check_schema_shape
from airflow_provider_anyfast.exceptions import AnyFastConfigError

TRUNCATED_REASONS = frozenset({"length", "max_tokens"})
FILTERED_REASONS = frozenset(
    {"content_filter", "safety", "recitation", "blocklist", "prohibited_content", "spii", "image_safety"}
)
_DECODER = json.JSONDecoder()


class JsonCutOffError(ValueError):
    """The answer's JSON opens but never closes: it was cut off, whatever finish_reason says."""


class OutputSchema:
    """A pydantic model class or a JSON-schema dict, behind one validate() call."""

    def __init__(self, schema: type[BaseModel] | Mapping[str, Any]) -> None:
        self.model: type[BaseModel] | None = None
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            self.model = schema
            self.json_schema: dict[str, Any] = schema.model_json_schema()
            self.name = schema.__name__
            self._validator: Any = None
        elif isinstance(schema, Mapping):
            check_schema_shape(schema)
            self.json_schema = dict(schema)
            self.name = str(schema.get("title") or "output")
            cls = jsonschema.validators.validator_for(self.json_schema)
            try:
                cls.check_schema(self.json_schema)
            except jsonschema.SchemaError as exc:
                raise AnyFastConfigError(
                    f"output_schema is not a valid JSON schema: {exc.message} (at "
                    f"{'/'.join(str(p) for p in exc.path) or 'the top level'})"
                ) from None
            self._validator = cls(self.json_schema)
        else:
            raise AnyFastConfigError(
                f"output_schema must be a pydantic model class or a JSON-schema dict, got {type(schema).__name__}"
            )

    @classmethod
    def coerce(cls, schema: OutputSchema | type[BaseModel] | Mapping[str, Any] | None) -> OutputSchema | None:
        if schema is None or isinstance(schema, OutputSchema):
            return schema
        return cls(schema)

    def validate(self, value: Any) -> Any:
        """The validated value (a model instance for a pydantic schema); ValueError says why not."""
        if self.model is not None:
            try:
                return self.model.model_validate(value)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:5]
                )
                raise ValueError(f"the JSON does not match the schema {self.name}: {problems}") from None
        errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.path))[:5]
        if errors:
            problems = "; ".join(f"{'/'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors)
            raise ValueError(f"the JSON does not match the schema {self.name}: {problems}")
        return value

    def to_json(self, validated: Any) -> Any:
        """The JSON-ready form of a validated value (what goes to XCom and rows)."""
        return validated.model_dump(mode="json") if isinstance(validated, BaseModel) else validated


def extract_json(text: str) -> Any:
    """The JSON value in a model's answer, without a Markdown fence or prose around it."""
    stripped = text.strip()
    if "```" in stripped:
        start = stripped.index("```")
        body_start = stripped.find("\n", start)
        end = stripped.find("```", body_start + 1) if body_start != -1 else -1
        if body_start != -1 and end != -1:
            stripped = stripped[body_start + 1 : end].strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for index, char in enumerate(stripped):
        if char in "{[":
            try:
                value, _ = _DECODER.raw_decode(stripped, index)
            except ValueError as exc:
                if _never_closes(stripped, index):
                    # everything after it lies inside it: an inner {...} would be a fragment, never the answer
                    if isinstance(exc, json.JSONDecodeError) and (
                        exc.pos >= len(stripped) - 1 or exc.msg.startswith("Unterminated string")
                    ):
                        raise JsonCutOffError(
                            "the answer holds no valid JSON value: it is cut off (a value that never closes)"
                        ) from None
                    break
                continue
            return value
    raise ValueError("the answer holds no valid JSON value")


def _never_closes(text: str, start: int) -> bool:
    """True when the bracket opened at ``start`` is still open at the end of the text."""
    depth, in_string, escaped = 0, False, False
    for char in text[start:]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return False
    return depth > 0


def schema_instructions(schema: OutputSchema | None) -> str:
    """The fixed instruction block that goes first in the system message."""
    text = "Answer with one JSON value only: no Markdown fences, no text before or after it."
    if schema is not None:
        schema_text = json.dumps(schema.json_schema, separators=(",", ":"), sort_keys=True)
        text += f"\nThe JSON must validate against this JSON schema:\n{schema_text}"
    return text


def response_format(schema: OutputSchema | None, use_json_schema: bool = False) -> dict[str, Any]:
    """``json_object`` by default; ``json_schema`` (strict, in the form Gemini accepts) when asked and known."""
    if use_json_schema and schema is not None:
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "schema": gemini_schema(schema.json_schema), "strict": True},
        }
    return {"type": "json_object"}


def reask_messages(messages: Sequence[Mapping[str, Any]], raw: str, problem: str) -> list[dict[str, Any]]:
    """The conversation extended with the bad answer and what was wrong with it."""
    return [
        *(dict(m) for m in messages),
        {"role": "assistant", "content": raw},
        {
            "role": "user",
            "content": f"That answer was not usable: {problem}. Reply again with only the corrected JSON value.",
        },
    ]


def finish_kind(finish_reason: str | None) -> str | None:
    """``truncated``/``filtered`` for finish reasons that make an answer unusable, else None."""
    reason = (finish_reason or "").lower()
    if reason in TRUNCATED_REASONS:
        return "truncated"
    if reason in FILTERED_REASONS:
        return "filtered"
    return None
