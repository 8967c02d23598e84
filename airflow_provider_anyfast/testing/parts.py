"""Content parts at the test server: checked as a gateway would, and described for the answer.

A gateway relaying to Gemini decodes every ``data:`` URL: bad base64, a type the model
cannot read, or too many inline bytes fail the request with a 400. The answer then
names what arrived (type and byte count of each file), so a test can prove the bytes got there.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
import zlib
from typing import Any

from airflow_provider_anyfast.core.filetypes import MODEL_TYPES, sniff
from airflow_provider_anyfast.testing.faults import Reply
from airflow_provider_anyfast.testing.validation import bad_request

MAX_INLINE_BYTES = 20_000_000  # Gemini's inline-data limit for one request


def _image_parts(messages: list[Any]) -> list[tuple[str, Any]]:
    found = []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for j, part in enumerate(content):
                found.append((f"messages[{i}].content[{j}]", part))
    return found


def _decode(url: str) -> tuple[str, bytes] | None:
    """(declared MIME, bytes) of a base64 ``data:`` URL; None when it is not one."""
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        return None
    try:
        return head[5:-7], base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def check_parts(messages: list[Any]) -> Reply | None:
    """The 400 a gateway gives for a bad part, or None when every part is fine."""
    inline = 0
    for where, part in _image_parts(messages):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                return bad_request(f"{where}.text", "must be a string")
            continue
        image = part.get("image_url") if isinstance(part, dict) else None
        url = image.get("url") if isinstance(image, dict) else None
        if kind != "image_url" or not isinstance(url, str):
            return bad_request(where, "must be a text part or an image_url part with a url")
        if url.startswith(("http://", "https://")):
            continue
        decoded = _decode(url)
        if decoded is None:
            return bad_request(f"{where}.image_url.url", "is not a valid base64 data: URL")
        declared, data = decoded
        if declared not in MODEL_TYPES:
            return bad_request(f"{where}.image_url.url", f"unsupported MIME type {declared!r}")
        if sniff(data[:16]) != declared:
            return bad_request(f"{where}.image_url.url", f"the bytes are not {declared}")
        inline += len(data)
        if inline > MAX_INLINE_BYTES:
            return bad_request(where, f"inline data exceeds {MAX_INLINE_BYTES} bytes for one request")
    return None


def describe_files(messages: list[Any]) -> list[dict[str, Any]]:
    """What arrived as files: ``{"type", "bytes", "sha256"}`` per data URL, ``{"url"}`` per URL."""
    files: list[dict[str, Any]] = []
    for _, part in _image_parts(messages):
        image = part.get("image_url") if isinstance(part, dict) else None
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str):
            continue
        decoded = _decode(url)
        if decoded is None:
            files.append({"url": url})
        else:
            files.append(
                {"type": decoded[0], "bytes": len(decoded[1]), "sha256": hashlib.sha256(decoded[1]).hexdigest()}
            )
    return files


def files_words(files: list[dict[str, Any]]) -> str:
    """One word per file for answer texts: ``application/pdf:2345`` or ``url:https://...``."""
    return " ".join(f"{f['type']}:{f['bytes']}" if "type" in f else f"url:{f['url']}" for f in files)


_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.DOTALL)
_SHOWN_TEXT = re.compile(rb"\(((?:\\.|[^\\)])*)\)\s*Tj")


def pdf_text(data: bytes) -> str:
    """The text a simple PDF shows (``(...) Tj`` in its content streams), so answers can read documents.

    Enough for the demo's generated PDFs (one font, Flate or plain streams): the first string
    is the title line, the rest one paragraph. Not a PDF parser: anything else gives ``""``.
    """
    shown: list[str] = []
    for stream in _STREAM.findall(data):
        with contextlib.suppress(zlib.error):  # a plain stream is read as it is
            stream = zlib.decompress(stream)
        for raw in _SHOWN_TEXT.findall(stream):
            shown.append(re.sub(rb"\\(.)", rb"\1", raw).decode("latin-1"))
    return f"{shown[0]}\n{' '.join(shown[1:])}".strip() if shown else ""


def files_text(messages: list[Any]) -> str:
    """The text of the PDFs that arrived inline, one after another."""
    texts = []
    for _, part in _image_parts(messages):
        image = part.get("image_url") if isinstance(part, dict) else None
        decoded = _decode(image["url"]) if isinstance(image, dict) and isinstance(image.get("url"), str) else None
        if decoded is not None and decoded[0] == "application/pdf":
            texts.append(pdf_text(decoded[1]))
    return "\n\n".join(t for t in texts if t)
