"""Response, chunk and usage models: tolerant of missing and extra fields.

Gateways of this family drop fields, add their own, and pass Gemini values through,
so every field has a default and unknown fields are kept rather than refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Lenient(BaseModel):
    """``null`` means "not given": gateways send ``"id": null`` or ``"reasoning_tokens": null``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None or key not in cls.model_fields}
        return data


def content_text(value: Any) -> Any:
    """Content as a list of parts (``[{"type": "text", "text": ...}]``) -> its text; a string as is."""
    if isinstance(value, list):
        return "".join(
            str(part.get("text") or "") if isinstance(part, dict) else str(part)
            for part in value
            if not isinstance(part, dict) or part.get("type", "text") == "text"
        )
    return value


class PromptTokensDetails(_Lenient):
    cached_tokens: int = 0


class CompletionTokensDetails(_Lenient):
    reasoning_tokens: int = 0


class Usage(_Lenient):
    """Token counts; ``total_tokens`` may exceed prompt + completion when thinking is counted apart."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None

    @property
    def reasoning_tokens(self) -> int:
        details = self.completion_tokens_details
        return details.reasoning_tokens if details else 0

    @property
    def cached_tokens(self) -> int:
        details = self.prompt_tokens_details
        return details.cached_tokens if details else 0

    def as_row_usage(self) -> dict[str, int]:
        """The flat form used in result rows and manifests."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens or self.prompt_tokens + self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_tokens": self.cached_tokens,
        }


class Message(_Lenient):
    role: str = "assistant"
    content: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _parts(cls, value: Any) -> Any:
        return content_text(value)


class Choice(_Lenient):
    index: int = 0
    message: Message = Field(default_factory=Message)
    finish_reason: str | None = None


class ChatCompletion(_Lenient):
    """A chat-completion answer; ``text`` and ``finish_reason`` read the first choice."""

    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[Choice] = Field(default_factory=list)
    usage: Usage | None = None

    @property
    def text(self) -> str:
        return (self.choices[0].message.content or "") if self.choices else ""

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None


class Delta(_Lenient):
    role: str | None = None
    content: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _parts(cls, value: Any) -> Any:
        return content_text(value)


class ChunkChoice(_Lenient):
    index: int = 0
    delta: Delta = Field(default_factory=Delta)
    finish_reason: str | None = None


class ChatCompletionChunk(_Lenient):
    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    choices: list[ChunkChoice] = Field(default_factory=list)
    usage: Usage | None = None


def assemble_stream(chunks: list[ChatCompletionChunk]) -> ChatCompletion:
    """Join streamed chunks into the completion they describe (text, finish reason, usage)."""
    texts: dict[int, list[str]] = {}
    finish: dict[int, str | None] = {}
    usage: Usage | None = None
    first: dict[str, Any] = {}
    for chunk in chunks:
        if not first and chunk.id:
            first = {"id": chunk.id, "created": chunk.created, "model": chunk.model}
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts.setdefault(choice.index, []).append(choice.delta.content or "")
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    choices = [
        Choice(index=i, message=Message(content="".join(parts)), finish_reason=finish.get(i))
        for i, parts in sorted(texts.items())
    ]
    return ChatCompletion(**first, choices=choices, usage=usage)
