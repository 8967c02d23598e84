"""What the test server answers: deterministic content, usage and streaming chunks.

Answers depend only on the request (a hash of the messages), so a test or a demo can run
twice and compare; content faults reshape the same answer the way Gemini misbehaves.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from airflow_provider_anyfast.testing.parts import describe_files, files_text, files_words
from airflow_provider_anyfast.testing.schema_values import SchemaFaker, find_schema_in_text

_JSON_TYPES = ("json_object", "json_schema")


@dataclass(frozen=True)
class Answer:
    """The assistant message content (None for a raw safety block) and its finish reason."""

    content: str | None
    finish_reason: str


def message_text(content: Any) -> str:
    """The text of one message's content: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def messages_text(messages: list[dict[str, Any]]) -> str:
    """All message texts joined: what fault rules search for their substring."""
    return "\n".join(message_text(m.get("content")) for m in messages)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message (the record a batch row sent)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def first_words(text: str, count: int) -> str:
    """The first ``count`` whitespace-separated words of ``text``."""
    return " ".join(text.split()[:count])


def is_json_mode(body: dict[str, Any]) -> bool:
    """True when ``response_format.type`` asks for JSON."""
    fmt = body.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in _JSON_TYPES


def find_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The schema the answer must follow: ``json_schema.schema``, else one found in the prompt."""
    fmt = body.get("response_format") or {}
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
        return spec["schema"]
    for message in body.get("messages", []):
        if message.get("role") in ("system", "user"):
            text = message_text(message.get("content"))
            schema = find_schema_in_text(text) if "{" in text else None
            if schema is not None:
                return schema
    return None


def _json_answer(body: dict[str, Any], seed: str, words: str, text: str) -> Any:
    schema = find_schema(body)
    if schema is None:
        return {"answer": f"Answer of: {words}".strip()}
    return SchemaFaker(schema, seed, words, text).value()  # values derived from the record's text


def make_answer(body: dict[str, Any], fault_kind: str | None = None) -> Answer:
    """The deterministic answer to ``body``, reshaped by a content fault when one applies."""
    messages = body["messages"]
    seed = hashlib.blake2b(json.dumps(messages, sort_keys=True).encode(), digest_size=12).hexdigest()
    files = describe_files(messages)
    user_text = f"{files_words(files)} {last_user_text(messages)}" if files else last_user_text(messages)
    json_mode = is_json_mode(body)
    if json_mode:
        record_text = last_user_text(messages)
        if documents := files_text(messages):  # a summary reads the attached PDF, not the prompt beside it
            record_text = f"{record_text}\n\n{documents}"
        value = _json_answer(body, seed, first_words(user_text, 8 + len(files)), record_text)
        if files and isinstance(value, dict) and find_schema(body) is None:
            value["files"] = files  # what arrived, so a test can prove the bytes got here
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = f"Echo: {first_words(user_text, 30 + len(files))}"
    if fault_kind == "fence":
        return Answer(f"```json\n{text}\n```", "stop")
    if fault_kind == "prose":
        return Answer(f"Sure! Here is the JSON you asked for:\n{text}\nLet me know if you need anything else.", "stop")
    if fault_kind == "invalid_json":
        return Answer('{"category": "shoes", "price": 12.5,, "note": \'single quoted\'', "stop")
    if fault_kind == "schema_mismatch":
        return Answer('{"unexpected": true}', "stop")
    if fault_kind == "truncated":
        cut = text[: max(1, len(text) // 2)]
        if json_mode and not text.startswith(("{", "[")):
            cut = '{"answer": "' + cut  # a prefix of a scalar may parse; this never does
        return Answer(cut, "length")
    if fault_kind == "filtered":
        return Answer("", "content_filter")
    if fault_kind == "filtered_raw":
        return Answer(None, "SAFETY")
    if fault_kind == "empty":
        return Answer("", "stop")
    return Answer(text, "stop")


def completion_id() -> str:
    """A fresh ``chatcmpl-<hex>`` id."""
    return f"chatcmpl-{secrets.token_hex(12)}"


def completion(body: dict[str, Any], answer: Answer, usage: dict[str, Any]) -> dict[str, Any]:
    """The ``chat.completion`` object, with ``n`` identical choices."""
    message = {"role": "assistant", "content": answer.content}
    choices = [
        {"index": i, "message": dict(message), "finish_reason": answer.finish_reason}
        for i in range(int(body.get("n") or 1))
    ]
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": choices,
        "usage": usage,
    }


def split_content(content: str, parts: int = 3) -> list[str]:
    """Cut content into a few delta pieces (at least one, never empty pieces)."""
    if not content:
        return []
    size = max(1, -(-len(content) // parts))
    return [content[i : i + size] for i in range(0, len(content), size)]


def stream_events(
    body: dict[str, Any], answer: Answer, usage: dict[str, Any], fault_kind: str | None
) -> list[dict[str, Any] | str]:
    """The SSE ``data:`` payloads of a streamed answer, in order (``"[DONE]"`` as a string).

    ``stream_error`` stops after the first content piece with an ``{"error": ...}`` event;
    ``stream_no_done`` sends everything except ``[DONE]``.
    """
    base = {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = body["model"]

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events: list[dict[str, Any] | str] = [chunk({"role": "assistant"}, None)]
    pieces = split_content(answer.content or "")
    if fault_kind == "stream_error":
        events.extend(chunk({"content": p}, None) for p in pieces[:1])
        error = {"message": "upstream stream interrupted", "type": "upstream_error", "code": "stream_error"}
        events.append({"error": error})
        return events
    events.extend(chunk({"content": p}, None) for p in pieces)
    events.append(chunk({}, answer.finish_reason))
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        events.append({**base, "choices": [], "usage": usage})
    if fault_kind != "stream_no_done":
        events.append("[DONE]")
    return events
