"""The request contract: which parameters exist, their ranges, and the model list.

Every value is checked here before a request is built, so a bad value costs nothing:
the error names the field and the allowed range, and no request goes out.
"""

from __future__ import annotations

import difflib
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from airflow_provider_anyfast.exceptions import AnyFastParameterError

log = logging.getLogger(__name__)

KNOWN_MODELS: tuple[str, ...] = (
    "gemini-3.1-pro-preview",
    "gemini-3.1-flash-image-preview",
    "gemini-3.1-flash-lite-preview",
    "gemini-3-pro-preview",
    "gemini-3-pro-image-preview",
    "gemini-3-flash-preview",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
)
DEFAULT_MODEL = "gemini-2.5-flash"
ROLES = ("system", "user", "assistant")


class UnknownModelWarning(UserWarning):
    """A model outside the known list: sent anyway, since the list changes over time."""


class ChatParams(BaseModel):
    """The completion parameters of the contract, with their documented ranges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1)
    response_format: dict[str, Any] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    seed: int | None = None

    @field_validator("stop")
    @classmethod
    def _stop_at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not 1 <= len(value) <= 4:
            raise ValueError("stop takes a string or a list of 1 to 4 strings")
        return value

    @field_validator("response_format")
    @classmethod
    def _known_format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        kind = value.get("type")
        if kind not in ("text", "json_object", "json_schema"):
            raise ValueError("response_format.type must be 'text', 'json_object' or 'json_schema'")
        if kind == "json_schema" and not isinstance(value.get("json_schema"), Mapping):
            raise ValueError("response_format of type 'json_schema' needs a 'json_schema' object")
        return value


PARAM_NAMES: frozenset[str] = frozenset(ChatParams.model_fields)


def _describe(error: Mapping[str, Any]) -> str:
    field = ".".join(str(p) for p in error.get("loc", ())) or "parameters"
    ctx = error.get("ctx") or {}
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(PARAM_NAMES))
        return f"unknown parameter '{field}'; the API accepts: {allowed}"
    bounds = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}
    for key, sign in bounds.items():
        if kind == key:
            limit = ctx.get({">=": "ge", "<=": "le", ">": "gt", "<": "lt"}[sign])
            return f"'{field}' must be {sign} {limit} (got {error.get('input')!r})"
    return f"'{field}': {error.get('msg')} (got {error.get('input')!r})"


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check completion parameters; return only those that were set, ready to send."""
    try:
        checked = ChatParams.model_validate(dict(params))
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise AnyFastParameterError(f"Invalid completion parameter: {problems}") from None
    return checked.model_dump(exclude_none=True)


def validate_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Check the message list shape: at least one ``{"role", "content"}`` with a known role."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise AnyFastParameterError("'messages' must be a non-empty list of {'role': ..., 'content': ...} mappings")
    checked = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise AnyFastParameterError(f"'messages[{index}]' must be a mapping, got {type(message).__name__}")
        if message.get("role") not in ROLES:
            raise AnyFastParameterError(
                f"'messages[{index}].role' must be one of {', '.join(ROLES)}, got {message.get('role')!r}"
            )
        content = message.get("content")
        if not isinstance(content, str):
            _check_parts(content, f"messages[{index}].content")
        checked.append(dict(message))
    return checked


def _check_parts(content: Any, where: str) -> None:
    """Content parts as the API takes them: ``text`` parts and ``image_url`` parts with a URL."""
    if isinstance(content, str | bytes) or not isinstance(content, Sequence) or not content:
        raise AnyFastParameterError(f"'{where}' must be a string or a non-empty list of content parts")
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            continue
        image = part.get("image_url") if isinstance(part, Mapping) else None
        if kind == "image_url" and isinstance(image, Mapping) and isinstance(image.get("url"), str):
            continue
        raise AnyFastParameterError(
            f"'{where}[{i}]' must be {{'type': 'text', 'text': ...}} or "
            "{'type': 'image_url', 'image_url': {'url': ...}}; to send files, pass attachments=[...]"
        )


def check_model(model: str | None, extra_models: Iterable[str] = ()) -> str:
    """Return the model name; an unknown name warns rather than refuses (the list changes)."""
    if not isinstance(model, str) or not model.strip():
        raise AnyFastParameterError(
            "'model' must be a model name such as 'gemini-2.5-flash'; set it on the call, the "
            "operator, or the connection's 'model' extra"
        )
    if model not in KNOWN_MODELS and model not in set(extra_models):
        close = difflib.get_close_matches(model, [*KNOWN_MODELS, *extra_models], n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        message = (
            f"model {model!r} is not in the known list; {hint}sending it anyway. Known: {', '.join(KNOWN_MODELS)}. "
            "Add it to the connection's 'extra_models' extra to silence this warning."
        )
        warnings.warn(message, UnknownModelWarning, stacklevel=3)
        log.warning(message)
    return model
