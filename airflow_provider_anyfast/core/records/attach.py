"""Each record's files: which references it names, and its request with them attached.

``attachments`` is the name of a record field (a string or a list of strings), or a Jinja
template rendered per record (anything with ``{{``, ``{%`` or ``://``), or a list of either.
A template yields one reference per line, or a JSON list. The files are read only when the
record's request is built (one record's files at a time); a file that cannot be sent
turns the record into an ``invalid_record`` row naming the file and the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_anyfast.core.attachments import AttachmentError, AttachmentLoader, attach_to_last_user
from airflow_provider_anyfast.core.records.engine import WorkItem
from airflow_provider_anyfast.core.records.prompt import PromptTemplate, TemplateFieldError
from airflow_provider_anyfast.core.records.reuse import request_key
from airflow_provider_anyfast.core.records.rows import ResultRow, invalid_record_row

if TYPE_CHECKING:
    from airflow_provider_anyfast.core.records.plan import RecordsJob


def _is_template(spec: str) -> bool:
    return "{{" in spec or "{%" in spec or "://" in spec


class RecordAttachments:
    """The ``attachments`` argument, compiled once per run, with the loader that reads the files."""

    def __init__(
        self, spec: str | Sequence[str], loader: AttachmentLoader, context: Mapping[str, Any] | None = None
    ) -> None:
        specs = [spec] if isinstance(spec, str) else list(spec)
        if not specs or not all(isinstance(s, str) and s.strip() for s in specs):
            raise ValueError(
                "'attachments' must be a record field name, a Jinja template such as "
                "'s3://bucket/docs/{{ record.file }}', or a list of them"
            )
        self.specs = specs
        self.loader = loader
        self._templates = [PromptTemplate(s, context=context) if _is_template(s) else None for s in specs]

    def fingerprint(self) -> list[Any]:
        """What decides a record's files, for the resume fingerprint (not the files' bytes)."""
        return [self.specs, self.loader.max_file_bytes, self.loader.max_request_bytes, self.loader.presign is not None]

    def refs(self, record: Mapping[str, Any]) -> list[str]:
        """The references a record names; TemplateFieldError or ValueError says what is wrong."""
        found: list[str] = []
        for spec, template in zip(self.specs, self._templates, strict=True):
            if template is None:
                if spec not in record:
                    raise TemplateFieldError(f"attachments refers to field {spec!r}, which the record does not have")
                found.extend(_as_refs(record[spec], f"field {spec!r}"))
            else:
                found.extend(_rendered_refs(template.render(record)))
        return found

    def request(
        self, job: RecordsJob, row_id: str | int, record: Mapping[str, Any], messages: list[dict[str, Any]]
    ) -> WorkItem | ResultRow:
        """The record's request with its files attached, or its ``invalid_record`` row."""
        try:
            attachments = self.loader.load(self.refs(record))
        except (AttachmentError, TemplateFieldError, ValueError) as exc:
            return invalid_record_row(row_id, f"record {row_id!r}: {exc}; nothing was sent for it")
        prompt = PromptTemplate.estimate_tokens(messages) + sum(a.tokens for a in attachments)
        completion = job.completion_estimate()
        if prompt + completion > job.max_input_tokens:
            return invalid_record_row(
                row_id,
                f"record {row_id!r} is too large: about {prompt} prompt tokens with its {len(attachments)} "
                f"attachment(s) plus {completion} for the answer exceed max_input_tokens={job.max_input_tokens}; "
                "it was not sent",
            )
        body = job.body(attach_to_last_user(messages, attachments))
        key_body = job.body(attach_to_last_user(messages, attachments, for_key=True))
        return WorkItem(row_id, body, prompt + completion, key_body=key_body)

    def key(
        self, job: RecordsJob, row_id: str | int, record: Mapping[str, Any], messages: list[dict[str, Any]]
    ) -> str | None:
        """The record's request key (its files are read to hash them), or None when it cannot be sent."""
        item = self.request(job, row_id, record, messages)
        return request_key(item.key_body or item.body) if isinstance(item, WorkItem) else None


def _as_refs(value: Any, where: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"attachments {where} must hold a reference string or a list of them, not {type(value).__name__}")


def _rendered_refs(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        try:
            return _as_refs(json.loads(text), "template (a JSON list)")
        except json.JSONDecodeError:
            raise ValueError(f"the attachments template rendered {text[:80]!r}, which is not a JSON list") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
