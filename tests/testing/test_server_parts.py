"""Content parts at the test server, over real HTTP: checked as a gateway would, echoed back."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_anyfast.testing import AnyFastTestServer

PDF = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "documents" / "01-checkout-outage-postmortem.pdf"


def post(server: AnyFastTestServer, parts: list[dict[str, Any]], json_mode: bool = True) -> requests.Response:
    body: dict[str, Any] = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": parts}]}
    if json_mode:
        body["response_format"] = {"type": "json_object"}
    headers = {"Authorization": f"Bearer {server.token}"}
    return requests.post(f"{server.base_url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def data_url(mime: str, data: bytes) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode()}"}}


def test_answers_name_the_files_that_arrived(anyfast_server: AnyFastTestServer) -> None:
    parts = [{"type": "text", "text": "Summarize"}, data_url("application/pdf", PDF.read_bytes()),
             {"type": "image_url", "image_url": {"url": "https://example.org/a.png"}}]  # fmt: skip
    response = post(anyfast_server, parts)
    assert response.status_code == 200, response.text
    answer = response.json()["choices"][0]["message"]["content"]
    files = json.loads(answer)["files"]
    assert files[0]["type"] == "application/pdf" and files[0]["bytes"] == PDF.stat().st_size
    assert files[1] == {"url": "https://example.org/a.png"}
    text = post(anyfast_server, parts, json_mode=False).json()["choices"][0]["message"]["content"]
    assert text.startswith(f"Echo: application/pdf:{PDF.stat().st_size} url:https://example.org/a.png Summarize")


@pytest.mark.parametrize(
    ("part", "problem"),
    [
        ({"type": "image_url", "image_url": {"url": "data:application/pdf;base64,%%%not-base64"}}, "valid base64"),
        (data_url("image/gif", b"GIF89a\x01\x00"), "unsupported MIME type 'image/gif'"),
        (data_url("application/pdf", b"\x89PNG\r\n\x1a\n0000"), "the bytes are not application/pdf"),
        ({"type": "image_url", "image_url": {}}, "must be a text part or an image_url part"),
        ({"type": "text", "text": 5}, "must be a string"),
    ],
    ids=["bad-base64", "gif", "mislabelled", "no-url", "text-not-string"],
)
def test_bad_parts_are_refused_with_the_part_named(
    anyfast_server: AnyFastTestServer, part: dict[str, Any], problem: str
) -> None:
    response = post(anyfast_server, [{"type": "text", "text": "x"}, part])
    assert response.status_code == 400
    error = response.json()["error"]
    assert problem in error["message"] and error["param"].startswith("messages[0].content[1]")


def test_more_inline_bytes_than_gemini_takes_are_refused(anyfast_server: AnyFastTestServer) -> None:
    big = b"%PDF-1.7\n" + b"0" * 10_500_000  # two of them: 21 MB of inline data
    response = post(anyfast_server, [data_url("application/pdf", big), data_url("application/pdf", big)])
    assert response.status_code == 400 and "inline data exceeds 20000000 bytes" in response.json()["error"]["message"]
