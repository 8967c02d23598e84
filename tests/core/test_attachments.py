"""Files as content parts: type from content, caps, refusals that name the file, and the key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from airflow_provider_anyfast.core.attachments import (
    IMAGE_TOKENS,
    PDF_PAGE_TOKENS,
    AttachmentError,
    AttachmentLoader,
    attach_to_last_user,
)
from airflow_provider_anyfast.core.filetypes import detect, pdf_pages
from airflow_provider_anyfast.core.params import validate_messages
from airflow_provider_anyfast.exceptions import AnyFastParameterError

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "example_dags" / "data" / "documents"
PDF = DOCS / "01-checkout-outage-postmortem.pdf"
PNG = DOCS / "07-pricing-committee-notes.png"
JPEG = ROOT / "tests" / "data" / "gradient.jpg"


@pytest.mark.parametrize(
    ("path", "mime"), [(PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg")], ids=["pdf", "png", "jpeg"]
)
def test_real_files_become_data_url_parts_with_their_exact_bytes(path: Path, mime: str) -> None:
    [attachment] = AttachmentLoader().load([str(path)])
    url = attachment.part["image_url"]["url"]
    assert attachment.mime == mime and url.startswith(f"data:{mime};base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == path.read_bytes()
    assert attachment.tokens == (PDF_PAGE_TOKENS if mime == "application/pdf" else IMAGE_TOKENS)


def test_the_content_decides_the_type_not_the_extension(tmp_path: Path) -> None:
    disguised = tmp_path / "scan.pdf"
    disguised.write_bytes(PNG.read_bytes())
    [attachment] = AttachmentLoader().load([f"file://{disguised}"])
    assert attachment.mime == "image/png"
    assert attachment.part["image_url"]["url"].startswith("data:image/png;base64,")


def test_text_files_are_inlined_as_text_parts(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Heading\nZürich: 12 % more", encoding="utf-8")
    [attachment] = AttachmentLoader().load([str(notes)])
    assert attachment.mime == "text/markdown"
    assert attachment.part == {"type": "text", "text": "# Heading\nZürich: 12 % more"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"GIF89a\x01\x00\x01\x00", "image/gif, which the model does not read"),
        (b"PK\x03\x04\x14\x00\x00\x00binary\x00", "not a type the model reads"),
    ],
    ids=["gif", "zip"],
)
def test_a_type_the_model_cannot_read_is_refused_by_name(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    with pytest.raises(AttachmentError, match=reason) as caught:
        AttachmentLoader().load([str(path)])
    assert caught.value.ref == str(path)


def test_missing_and_oversized_files_name_the_file_and_the_cap(tmp_path: Path) -> None:
    with pytest.raises(AttachmentError, match=r"'.*nope\.pdf' was not found"):
        AttachmentLoader().load([str(tmp_path / "nope.pdf")])
    with pytest.raises(AttachmentError, match="larger than max_file_bytes=1000"):
        AttachmentLoader(max_file_bytes=1000).load([str(PDF)])
    # each file fits, both together do not
    loader = AttachmentLoader(max_file_bytes=PDF.stat().st_size, max_request_bytes=PDF.stat().st_size + 10)
    with pytest.raises(AttachmentError, match="past max_request_bytes"):
        loader.load([str(PDF), str(PDF)])
    with pytest.raises(ValueError, match="max_file_bytes must be a positive"):
        AttachmentLoader(max_file_bytes=0)


def test_https_is_passed_as_a_url_and_plain_http_is_refused() -> None:
    [attachment] = AttachmentLoader().load(["https://example.org/report.pdf?v=2"])
    assert attachment.part == {"type": "image_url", "image_url": {"url": "https://example.org/report.pdf?v=2"}}
    assert attachment.mime == "application/pdf"
    with pytest.raises(AttachmentError, match="use https"):
        AttachmentLoader().load(["http://example.org/a.png"])


def test_key_parts_hold_the_content_hash_not_the_bytes_or_the_name(tmp_path: Path) -> None:
    copy = tmp_path / "other-name.pdf"
    copy.write_bytes(PDF.read_bytes())
    first, second = AttachmentLoader().load([str(PDF), str(copy)])
    assert first.key_part == second.key_part and "base64" not in str(first.key_part)
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Summarize"}]
    sent = attach_to_last_user(messages, [first])
    assert sent[0] == messages[0] and sent[1]["content"][0] == {"type": "text", "text": "Summarize"}
    assert sent[1]["content"][1] == first.part and messages[1]["content"] == "Summarize"  # the input is not changed
    validate_messages(sent)  # content parts pass the request contract


def test_the_contract_refuses_malformed_parts_by_position() -> None:
    with pytest.raises(AnyFastParameterError, match=r"messages\[0\]\.content\[1\]"):
        validate_messages([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}]}])


def test_pdf_pages_are_counted_from_page_objects() -> None:
    assert pdf_pages(PDF.read_bytes()) == 1
    assert pdf_pages(b"%PDF-1.7 /Type /Pages /Type /Page /Type/Page /Type /Page") == 3
    assert detect("x.csv", b"a,b\n1,2\n") == ("text/csv", None)
