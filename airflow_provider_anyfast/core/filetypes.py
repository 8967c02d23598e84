"""What a file is, from its first bytes: the MIME types a Gemini model can read, and text.

A short signature table rather than a library: the model takes only a handful of binary
types (PDF, PNG, JPEG, WEBP, HEIC/HEIF), each with a fixed signature, and what we most need
to tell apart besides them is plain UTF-8 text, which magic-number libraries do not detect.
GIF is recognised so that it can be refused by name instead of as "unknown".
"""

from __future__ import annotations

import mimetypes
import re

#: Binary types the model reads from an ``image_url`` part (Gemini's documented inline types).
MODEL_TYPES: frozenset[str] = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"}
)
#: Text files are inlined as text parts; the extension only names the flavour of text.
TEXT_TYPES: dict[str, str] = {
    ".txt": "text/plain", ".md": "text/markdown", ".csv": "text/csv", ".json": "application/json",
}  # fmt: skip
_HEIF_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"hevc": "image/heic", b"heim": "image/heic",
                b"heis": "image/heic", b"mif1": "image/heif", b"msf1": "image/heif"}  # fmt: skip
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def sniff(head: bytes) -> str | None:
    """The MIME type of a binary format recognised from its first bytes (16 are enough), else None."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return _HEIF_BRANDS[head[8:12]]
    return None


def detect(name: str, data: bytes) -> tuple[str, str | None]:
    """(MIME type, None) of a file's content, or (best guess, why the model cannot take it).

    The content decides: a PNG named ``.pdf`` is a PNG. Content that is no known binary
    format and decodes as UTF-8 without NUL bytes is text, whatever its extension.
    """
    found = sniff(data[:16])
    if found in MODEL_TYPES:
        return found, None
    if found is not None:
        return found, f"its content is {found}, which the model does not read ({_accepted()})"
    if b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""
            return TEXT_TYPES.get(suffix, "text/plain"), None
    guess = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return guess, f"its content is not a type the model reads (first bytes {data[:8]!r}; {_accepted()})"


def pdf_pages(data: bytes) -> int:
    """Pages of a PDF, counted from its page objects; by size (one a 50 KB) when they are compressed."""
    return len(_PAGE.findall(data)) or max(1, len(data) // 50_000)


def url_type(url: str) -> str | None:
    """The MIME type a URL's extension suggests (the gateway fetches it; we never see the bytes)."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return TEXT_TYPES.get(suffix) or mimetypes.guess_type(path)[0]


def _accepted() -> str:
    return "it takes PDF, PNG, JPEG, WEBP, HEIC/HEIF images and UTF-8 text"
