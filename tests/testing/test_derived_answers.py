"""The local server's JSON answers are derived from the record: they read like the job in a demo."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from airflow_provider_anyfast.testing.parts import pdf_text
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
EXAMPLES = Path(__file__).parents[2] / "example_dags" / "data" / "documents"
CATEGORIES = ["outdoor", "sports & fitness", "kitchen", "coffee", "audio", "computing", "smart home", "home textiles",
              "kids & baby", "cycling", "e-readers & wearables", "power & energy"]  # fmt: skip
#: Product texts as the enrichment example sends them, and the category a reader would pick.
PRODUCTS = {
    "TrailRunner 3 GTX. Waterproof trail running shoe, Gore-Tex membrane, Vibram outsole.": "outdoor",
    "Burr Coffee Grinder. Stainless steel conical burrs, 40 grind settings from espresso to French press.": "coffee",
    "Air Purifier HEPA 40. True HEPA H13 + activated carbon filter, sleep mode, rooms up to 40 m2.": "smart home",
    "Kids Rain Jacket. Fully taped seams, 10,000mm waterproof rating, reflective details.": "kids & baby",
    "Smartwatch Active 2. AMOLED 1.4in, GPS + GLONASS, heart rate and SpO2, 10 day battery.": "e-readers & wearables",
    "27in 4K Monitor. 27 inch IPS, USB-C with 65W power delivery.": "computing",
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


def test_shop_categories_follow_the_product_text(ask: Any) -> None:
    product = {"type": "object", "properties": {"category": {"enum": CATEGORIES}}, "required": ["category"]}
    said = {text: ask(product, text)["category"] for text in PRODUCTS}
    assert said == PRODUCTS


def test_an_attached_pdf_is_what_the_summary_reads(anyfast_server: AnyFastTestServer) -> None:
    pdf = (EXAMPLES / "01-checkout-outage-postmortem.pdf").read_bytes()
    url = "data:application/pdf;base64," + base64.b64encode(pdf).decode()
    content = [
        {"type": "text", "text": "Summarize the attached document."},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": content}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": DOCUMENT}}}  # fmt: skip
    with requests.post(f"{anyfast_server.base_url}/v1/chat/completions", json=body, timeout=5,
                       headers={"Authorization": f"Bearer {anyfast_server.token}"}) as reply:  # fmt: skip
        value = json.loads(reply.json()["choices"][0]["message"]["content"])
    assert value["title"] == "Postmortem: checkout outage on 4 March"
    assert value["summary"].startswith("Between 14:05 and 14:52 UTC on 4 March, roughly 38% of checkout attempts")
    assert value["language"] == "en"


def test_pdf_text_reads_flate_streams_and_nothing_else() -> None:
    text = pdf_text((EXAMPLES / "11-quartalsbericht-logistik-de.pdf").read_bytes())
    assert text.startswith("Quartalsbericht Logistik, erstes Quartal\nIm ersten Quartal haben wir 412.000 Pakete")
    assert "Übergabe" in text
    assert pdf_text(b"%PNG not a pdf") == ""
