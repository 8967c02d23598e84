"""The local server's JSON answers are derived from the record: they read like the job in a demo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import requests

from airflow_provider_anyfast.testing.server import AnyFastTestServer

TICKET = {
    "type": "object",
    "properties": {
        "category": {"enum": ["delivery", "payment", "product_question", "safety", "other"]},
        "priority": {"enum": ["low", "normal", "high", "urgent"]},
        "urgent": {"type": "boolean"},
        "summary": {"type": "string", "maxLength": 60},
    },
    "required": ["category", "priority", "urgent", "summary"],
}
DOCUMENT = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "summary": {"type": "string", "maxLength": 200},
        "language": {"type": "string", "maxLength": 5},
        "orders": {"type": "integer", "minimum": 0},
        "share": {"type": "number", "minimum": 0, "maximum": 100},
    },
    "required": ["title", "summary", "language", "orders", "share"],
}


@pytest.fixture
def ask(anyfast_server: AnyFastTestServer) -> Iterator[Any]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {anyfast_server.token}"

    def answer(schema: dict[str, Any], text: str) -> Any:
        body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": text}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}  # fmt: skip
        reply = session.post(f"{anyfast_server.base_url}/v1/chat/completions", json=body, timeout=5).json()
        value = json.loads(reply["choices"][0]["message"]["content"])
        jsonschema.validate(value, schema)
        return value

    yield answer
    session.close()


def test_enum_values_and_flags_follow_the_words_of_the_text(ask: Any) -> None:
    espresso = ask(TICKET, "Subject: How do I descale the espresso machine?\n\nWhich descaler should I use? Thanks!")
    assert (espresso["category"], espresso["priority"], espresso["urgent"]) == ("product_question", "low", False)
    fire = ask(TICKET, "Subject: Power station smell\n\nIt got hot and there was a burning smell. Urgent!")
    assert (fire["category"], fire["priority"], fire["urgent"]) == ("safety", "urgent", True)
    charged = ask(TICKET, "My card was charged twice for order 58307. Please refund the duplicate payment.")
    assert (charged["category"], charged["priority"]) == ("payment", "high")
    assert charged["summary"] == "My card was charged twice for order 58307."  # whole sentences within maxLength
    assert ask(TICKET, "Nothing relevant here")["category"] == "other"  # no overlap: the default-like value


def test_titles_summaries_numbers_and_language_come_from_the_document(ask: Any) -> None:
    text = (
        "Document: 11-report.txt\n\nQuartalsbericht Logistik\n"
        "Im ersten Quartal haben wir 412 Pakete versendet, 14,5 Prozent mehr als im Vorjahr. Die Kosten sinken."
    )
    value = ask(DOCUMENT, text)
    assert value["title"] == "Quartalsbericht Logistik"  # the first line after the prompt's header
    assert value["summary"].startswith("Im ersten Quartal haben wir 412 Pakete versendet")
    assert value["language"] == "de"
    assert (value["orders"], value["share"]) == (412, 14.5)
    assert ask(DOCUMENT, text) == value  # deterministic
