"""Files as content parts of a user message: read, typed, capped, keyed by content.

A reference (``s3://...``, ``gs://...``, ``file://...``, a local path, or an ``https://`` URL)
becomes one part beside the prompt: images and PDFs as ``image_url`` parts holding a
base64 ``data:`` URL (or the URL itself for https, or a presigned URL when asked), text
files as text parts. Files are read one request at a time, each up to its cap, so memory
stays flat however many documents a run has. The request key sees each file's content
hash, never its bytes or its name: the same PDF under two names is one request.

Token estimate (deliberately high, for limits and ``max_input_tokens``): a text file
counts like prompt text (4 characters a token); an image ``IMAGE_TOKENS``; a PDF
``PDF_PAGE_TOKENS`` a page; a URL (never read) counts as one image.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_anyfast.core.filetypes import detect, pdf_pages, sniff, url_type

#: Defaults that fit Gemini's inline limit (20 MB a request, base64 adds a third).
DEFAULT_MAX_FILE_BYTES = 10_000_000
DEFAULT_MAX_REQUEST_BYTES = 14_000_000
IMAGE_TOKENS = 1_120  # Gemini 3's default image resolution; Gemini 2.5 counts 258 a 768x768 tile
PDF_PAGE_TOKENS = 560  # Gemini 3's default for document pages; Gemini 2.5 counts 258 a page
CHARS_PER_TOKEN = 4

Opener = Callable[[str], Any]  # a reference -> a path-like object with ``open("rb")``
Presigner = Callable[[str], "tuple[str, str]"]  # a reference -> (presigned URL, content tag)


class AttachmentError(ValueError):
    """A file cannot be sent: names the file and the reason."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"attachment {ref!r} {reason}")
        self.ref = ref
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file ready to send: its content part, the part's stand-in for the request key, tokens."""

    ref: str
    mime: str
    size: int
    digest: str
    part: dict[str, Any]
    tokens: int

    @property
    def key_part(self) -> dict[str, Any]:
        """What the request key sees: type and content hash, not the bytes and not the name."""
        return {"type": "attachment", "mime": self.mime, "sha256": self.digest}


def _local(ref: str) -> Any:
    return Path(ref[len("file://") :] if ref.startswith("file://") else ref)


def _from_bytes(ref: str, data: bytes) -> Attachment:
    mime, problem = detect(ref, data)
    if problem is not None:
        raise AttachmentError(ref, f"cannot be sent: {problem}")
    digest = hashlib.sha256(data).hexdigest()
    if mime.startswith("text/") or mime == "application/json":
        text = data.decode("utf-8")
        return Attachment(ref, mime, len(data), digest, {"type": "text", "text": text},
                          len(text) // CHARS_PER_TOKEN + 1)  # fmt: skip
    tokens = pdf_pages(data) * PDF_PAGE_TOKENS if mime == "application/pdf" else IMAGE_TOKENS
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return Attachment(ref, mime, len(data), digest, {"type": "image_url", "image_url": {"url": url}}, tokens)


class AttachmentLoader:
    """Turns references into attachments within the caps; every failure is an AttachmentError.

    :param opener: opens a non-https reference (default: local files only).
    :param presign: when set, references it accepts (``s3://``) are sent as presigned URLs
        instead of their bytes; it returns the URL and a content tag (the ETag) for the key.
    """

    def __init__(
        self,
        opener: Opener | None = None,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        presign: Presigner | None = None,
    ) -> None:
        for name, value in (("max_file_bytes", max_file_bytes), ("max_request_bytes", max_request_bytes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")
        self.opener = opener or _local
        self.max_file_bytes = max_file_bytes
        self.max_request_bytes = max_request_bytes
        self.presign = presign

    def load(self, refs: Iterable[str]) -> list[Attachment]:
        """One request's attachments, in order; the first problem raises (nothing is sent)."""
        loaded: list[Attachment] = []
        total = 0
        for ref in refs:
            attachment = self._one(ref, self.max_request_bytes - total)
            total += attachment.size
            loaded.append(attachment)
        return loaded

    def _one(self, ref: str, room: int) -> Attachment:
        if not isinstance(ref, str) or not ref.strip():
            raise AttachmentError(str(ref), "is not a file reference (expected a URI or path string)")
        ref = ref.strip()
        scheme = ref.split("://", 1)[0].lower() if "://" in ref else "file"
        if scheme == "http":
            raise AttachmentError(ref, "is a plain http URL: use https (the gateway fetches URLs itself)")
        if scheme == "https":
            return self._url(ref, ref, hashlib.sha256(ref.encode()).hexdigest())
        if self.presign is not None and scheme in ("s3", "s3a"):
            url, tag = self._call(ref, self.presign)
            return self._url(ref, url, hashlib.sha256(f"{ref}\n{tag}".encode()).hexdigest(), presigned=True)
        cap = min(self.max_file_bytes, room)
        data = self._call(ref, lambda r: self._read(r, cap + 1))
        if len(data) > cap:
            if cap == self.max_file_bytes:
                raise AttachmentError(
                    ref, f"is larger than max_file_bytes={self.max_file_bytes}; raise it or skip the file"
                )
            raise AttachmentError(
                ref, f"takes the record past max_request_bytes={self.max_request_bytes} (all its files together)"
            )
        return _from_bytes(ref, data)

    def _read(self, ref: str, limit: int) -> bytes:
        with self.opener(ref).open("rb") as handle:
            chunks, size = [], 0
            while size < limit:
                chunk = handle.read(min(1 << 20, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)

    def _call(self, ref: str, action: Callable[[str], Any]) -> Any:
        try:
            return action(ref)
        except AttachmentError:
            raise
        except (FileNotFoundError, IsADirectoryError) as exc:
            kind = "is a folder, not a file" if isinstance(exc, IsADirectoryError) else "was not found"
            raise AttachmentError(ref, kind) from None
        except Exception as exc:  # storage errors come in many classes; the record gets the reason
            raise AttachmentError(ref, f"could not be read: {type(exc).__name__}: {exc}") from None

    def _url(self, ref: str, url: str, digest: str, presigned: bool = False) -> Attachment:
        mime = url_type(ref) or "application/octet-stream"
        part = {"type": "image_url", "image_url": {"url": url}}
        tokens = IMAGE_TOKENS
        if presigned:  # the gateway reads the bytes, but we still check the type from the first ones
            head = self._call(ref, lambda r: self._read(r, 16))
            mime = sniff(head) or mime
            if mime.startswith("text/"):
                raise AttachmentError(ref, "is text: send it inline (without presigning) so it becomes a text part")
        return Attachment(ref, mime, 0, digest, part, tokens)


def user_content(text: str, attachments: Sequence[Attachment], *, for_key: bool = False) -> list[dict[str, Any]]:
    """The parts of a user message: the prompt text first, then one part per attachment."""
    return [{"type": "text", "text": text}, *(a.key_part if for_key else a.part for a in attachments)]


def attach_to_last_user(
    messages: Sequence[dict[str, Any]], attachments: Sequence[Attachment], *, for_key: bool = False
) -> list[dict[str, Any]]:
    """A copy of ``messages`` whose last user message carries the attachments as parts."""
    result = [dict(m) for m in messages]
    for message in reversed(result):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                message["content"] = user_content(content, attachments, for_key=for_key)
            else:
                message["content"] = [*(content or []), *(a.key_part if for_key else a.part for a in attachments)]
            return result
    raise ValueError("attachments need a user message to go with: add one (the prompt)")
