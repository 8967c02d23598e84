"""The one place a chat-completion request body is built (as openai's ``_build_request`` is).

A ``ChatRequest`` holds what every request of a call or a run shares: the model, the
checked parameters and, in JSON mode, the ``response_format`` and the schema instruction.
The hook (one call, a stream, a JSON call), the chat operator (through the hook) and
the record engine (one body per record, every re-ask) all build bodies with it, so a
record in a batch is asked exactly as a single call would be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from airflow_provider_anyfast.core.jsonmode import OutputSchema, reask_messages, response_format, schema_instructions
from airflow_provider_anyfast.core.params import check_model, validate_messages, validate_params
from airflow_provider_anyfast.exceptions import AnyFastParameterError

_RESERVED = ("stream", "messages", "model")


@dataclass(frozen=True)
class ChatRequest:
    """What every request of one call or one run shares; ``body`` adds the messages.

    Build it with ``create`` (which checks the model and the parameters); the constructor
    takes values that are already checked.
    """

    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    schema: OutputSchema | None = None
    json_mode: bool = False

    @classmethod
    def create(
        cls,
        *,
        model: str | None,
        params: Mapping[str, Any],
        extra_models: Iterable[str] = (),
        schema: OutputSchema | None = None,
        json_mode: bool = False,
        use_json_schema: bool = False,
    ) -> ChatRequest:
        """Check the model and every parameter before anything is sent; JSON mode adds its format."""
        if any(key in params for key in _RESERVED):
            raise AnyFastParameterError("pass 'model' and 'messages' as arguments and use the stream_* call to stream")
        checked_model = check_model(model, extra_models)
        checked = validate_params(params)
        if json_mode:
            checked.setdefault("response_format", response_format(schema, use_json_schema))
        return cls(checked_model, checked, schema, json_mode)

    @cached_property
    def _instructions(self) -> str:
        return schema_instructions(self.schema)

    def messages(self, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The messages as sent: in JSON mode the instructions go first (a fixed prefix the provider caches)."""
        result = [dict(m) for m in messages]
        if not self.json_mode:
            return result
        if result and result[0].get("role") == "system":
            result[0]["content"] = f"{self._instructions}\n\n{result[0]['content']}"
        else:
            result.insert(0, {"role": "system", "content": self._instructions})
        return result

    def body(self, messages: Sequence[Mapping[str, Any]], *, stream: bool = False) -> dict[str, Any]:
        """The body for a conversation given by a caller: messages checked, JSON instructions added."""
        return self.assemble(self.messages(validate_messages(messages)), stream=stream)

    def assemble(self, messages: list[dict[str, Any]], *, stream: bool = False) -> dict[str, Any]:
        """The body for messages already in their final form (a record's, built from ``messages``)."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, **self.params}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body


def reask_body(body: Mapping[str, Any], raw: str, problem: str) -> dict[str, Any]:
    """The same request with the unusable answer and what was wrong with it appended."""
    return {**body, "messages": reask_messages(body["messages"], raw, problem)}


def build_request(
    messages: Sequence[Mapping[str, Any]],
    *,
    model: str | None,
    params: Mapping[str, Any],
    extra_models: Iterable[str] = (),
    stream: bool = False,
) -> dict[str, Any]:
    """The body of one plain (not JSON-mode) request, every field checked."""
    return ChatRequest.create(model=model, params=params, extra_models=extra_models).body(messages, stream=stream)
