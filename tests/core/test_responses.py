"""Response models: the contract's shape, and the odd payloads gateways actually send."""

from __future__ import annotations

import json

from airflow_provider_anyfast.core.responses import (
    ChatCompletion,
    ChatCompletionChunk,
    Usage,
    assemble_stream,
)

DOC_EXAMPLE = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 123,
    "model": "gemini-2.5-pro",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 123, "completion_tokens": 45, "total_tokens": 168},
}


def test_documented_example_parses() -> None:
    completion = ChatCompletion.model_validate_json(json.dumps(DOC_EXAMPLE))
    assert completion.id == "chatcmpl-abc123" and completion.model == "gemini-2.5-pro"
    assert completion.text == "Hi!" and completion.finish_reason == "stop"
    assert completion.choices[0].message.role == "assistant"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (123, 45)
    assert completion.usage.reasoning_tokens == 0 and completion.usage.cached_tokens == 0


def test_reasoning_and_cached_token_details() -> None:
    usage = Usage.model_validate(
        {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 150,  # thinking counted apart: more than prompt + completion
            "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 30},
        }
    )
    assert usage.reasoning_tokens == 30 and usage.cached_tokens == 64
    assert usage.as_row_usage() == {
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "total_tokens": 150,
        "reasoning_tokens": 30,
        "cached_tokens": 64,
    }


def test_usage_with_null_details_and_missing_total() -> None:
    usage = Usage.model_validate(
        {"prompt_tokens": 7, "completion_tokens": 3, "prompt_tokens_details": None, "completion_tokens_details": None}
    )
    assert usage.reasoning_tokens == 0 and usage.cached_tokens == 0
    assert usage.as_row_usage()["total_tokens"] == 10  # filled in when the gateway leaves it out


def test_missing_everything_gives_defaults() -> None:
    completion = ChatCompletion.model_validate({})
    assert completion.choices == [] and completion.usage is None
    assert completion.text == "" and completion.finish_reason is None


def test_null_or_empty_content_reads_as_empty_text() -> None:
    for content in (None, ""):
        data = {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "SAFETY"}]}
        completion = ChatCompletion.model_validate(data)
        assert completion.text == "" and completion.finish_reason == "SAFETY"


def test_choice_without_message_or_index() -> None:
    completion = ChatCompletion.model_validate({"choices": [{"finish_reason": "length"}]})
    assert completion.text == "" and completion.finish_reason == "length"
    assert completion.choices[0].index == 0 and completion.choices[0].message.role == "assistant"


def test_unknown_fields_are_kept_not_refused() -> None:
    data = {
        **DOC_EXAMPLE,
        "system_fingerprint": "fp_1",
        "provider": {"name": "google"},
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x", "reasoning_content": "thought", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {**DOC_EXAMPLE["usage"], "cost": 0.0012},
    }
    completion = ChatCompletion.model_validate(data)
    assert completion.model_extra == {"system_fingerprint": "fp_1", "provider": {"name": "google"}}
    assert completion.choices[0].message.model_extra == {"reasoning_content": "thought", "refusal": None}
    assert completion.usage is not None and completion.usage.model_extra == {"cost": 0.0012}
    assert completion.text == "x"


def test_first_choice_is_the_answer_when_n_is_above_one() -> None:
    completion = ChatCompletion.model_validate(
        {
            "choices": [
                {"index": 0, "message": {"content": "first"}, "finish_reason": "stop"},
                {"index": 1, "message": {"content": "second"}, "finish_reason": "length"},
            ]
        }
    )
    assert completion.text == "first" and completion.finish_reason == "stop"
    assert [c.message.content for c in completion.choices] == ["first", "second"]


def _chunk(**data: object) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate({"id": "c1", "created": 5, "model": "gemini-2.5-flash", **data})


def test_assemble_stream_joins_deltas_and_takes_the_final_usage() -> None:
    chunks = [
        _chunk(choices=[{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]),
        _chunk(choices=[{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]),
        _chunk(choices=[{"index": 0, "delta": {"content": "lo"}, "finish_reason": None}]),
        _chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
        _chunk(choices=[], usage={"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}),
    ]
    completion = assemble_stream(chunks)
    assert completion.text == "Hello" and completion.finish_reason == "stop"
    assert (completion.id, completion.created, completion.model) == ("c1", 5, "gemini-2.5-flash")
    assert completion.usage is not None and completion.usage.total_tokens == 3


def test_assemble_stream_keeps_choices_apart_and_tolerates_no_usage() -> None:
    chunks = [
        _chunk(choices=[{"index": 1, "delta": {"content": "b"}}, {"index": 0, "delta": {"content": "a"}}]),
        _chunk(choices=[{"index": 0, "delta": {"content": "A"}, "finish_reason": "stop"}]),
        _chunk(choices=[{"index": 1, "delta": {"content": None}, "finish_reason": "length"}]),
    ]
    completion = assemble_stream(chunks)
    assert [(c.index, c.message.content, c.finish_reason) for c in completion.choices] == [
        (0, "aA", "stop"),
        (1, "b", "length"),
    ]
    assert completion.usage is None


def test_assemble_empty_stream() -> None:
    completion = assemble_stream([])
    assert completion.choices == [] and completion.text == "" and completion.usage is None
