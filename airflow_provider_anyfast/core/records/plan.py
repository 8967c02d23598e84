"""Check a whole record set before anything is paid for, then turn it into work.

The first pass (``check_records``) reads every record once: it refuses duplicate ids, finds the
records that cannot be sent (not an object, no id, a missing template field, too large
for the model), and fingerprints the input and the prompt so a resumed run can tell
whether the rows already written belong to the same job. The second pass (``work``)
yields a request per record still to do, or a ready-made row for a refused record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_anyfast.core.records.engine import WorkItem
from airflow_provider_anyfast.core.records.prompt import PromptTemplate, TemplateRenderError
from airflow_provider_anyfast.core.records.reuse import request_key
from airflow_provider_anyfast.core.records.rows import ResultRow, invalid_record_row
from airflow_provider_anyfast.core.records.settings import DEFAULT_CONTEXT_TOKENS
from airflow_provider_anyfast.core.records.source import SourceItem, record_id
from airflow_provider_anyfast.core.request import ChatRequest

if TYPE_CHECKING:
    from airflow_provider_anyfast.core.records.attach import RecordAttachments

DEFAULT_COMPLETION_ESTIMATE = 512
_EXAMPLES = 5


class DuplicateRecordIdError(ValueError):
    """Two records share an id: rows could not be told apart, so nothing is sent."""


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _unencodable(messages: list[dict[str, Any]]) -> str | None:
    """Why the prompt cannot be sent as UTF-8 (a lone surrogate from a bad decode), else None."""
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str):
            continue
        try:
            content.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = content[exc.start : exc.end].encode("unicode_escape").decode("ascii")
            return (
                f"its prompt holds text that cannot be encoded as UTF-8 ({bad} at character {exc.start}: "
                "a lone surrogate, usually from text decoded wrongly upstream); fix or drop it in the input"
            )
    return None


@dataclass(frozen=True)
class RecordsJob:
    """What to ask for each record: the request builder, the system prompt, and the record's text."""

    template: PromptTemplate
    request: ChatRequest
    id_field: str | None = None
    system_prompt: str | None = None
    max_input_tokens: int = DEFAULT_CONTEXT_TOKENS
    attachments: RecordAttachments | None = None
    keep_fields: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def params(self) -> Mapping[str, Any]:
        return self.request.params

    @cached_property
    def head(self) -> list[dict[str, Any]]:
        """The fixed messages every record shares (JSON instructions, system prompt), built once."""
        return self.request.messages([{"role": "system", "content": self.system_prompt}] if self.system_prompt else [])

    def messages(self, record: Any) -> list[dict[str, Any]]:
        """The fixed messages first (the provider's prefix cache), the record's own text last."""
        return [*self.head, {"role": "user", "content": self.template.render(record)}]

    def kept(self, item: SourceItem) -> dict[str, Any] | None:
        """The record's ``keep_fields`` (None for a field it lacks), or None when none are kept."""
        if not self.keep_fields:
            return None
        value = item.value if isinstance(item.value, Mapping) else {}
        return {name: value.get(name) for name in self.keep_fields}

    def settings_fingerprint(self) -> dict[str, str]:
        """Digests of what shapes the answers, compared key by key on resume."""
        schema_json = self.request.schema.json_schema if self.request.schema is not None else None
        details = {
            "prompt": _digest([self.template.source, self.head, self.template.used_context(), schema_json])[:16],
            "model": self.model,
            "params": _digest(dict(self.params))[:16],
            "id_field": str(self.id_field),
        }
        if self.attachments is not None:
            details["attachments"] = _digest(self.attachments.fingerprint())[:16]
        return details

    def completion_estimate(self) -> int:
        return int(self.params.get("max_tokens") or DEFAULT_COMPLETION_ESTIMATE)

    def prepare(self, item: SourceItem) -> tuple[str | int, list[dict[str, Any]] | None, str | None]:
        """(id, messages, None) for a record to send, or (id, None, problem) for one to refuse."""
        rid, problem = record_id(item, self.id_field)
        row_id: str | int = rid if rid is not None else f"position:{item.position}"
        if item.problem is not None:
            return row_id, None, item.problem
        if problem is not None:
            return row_id, None, problem
        if not isinstance(item.value, Mapping):
            kind = "null" if item.value is None else type(item.value).__name__
            return row_id, None, f"record {row_id!r} is {kind}, not a JSON object (mapping)"
        try:
            messages = self.messages(item.value)
        except TemplateRenderError as exc:
            return row_id, None, f"record {row_id!r}: {exc}"
        unencodable = _unencodable(messages)
        if unencodable is not None:
            return row_id, None, f"record {row_id!r}: {unencodable}"
        size = PromptTemplate.estimate_tokens(messages)
        if size + self.completion_estimate() > self.max_input_tokens:
            return (
                row_id,
                None,
                (
                    f"record {row_id!r} is too large: about {size} prompt tokens plus {self.completion_estimate()} "
                    f"for the answer exceed the {self.max_input_tokens}-token context; it was not sent"
                ),
            )
        return row_id, messages, None

    def body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The record's request body, from the one request builder."""
        return self.request.assemble(messages)


@dataclass
class RecordCheck:
    """What the first pass found."""

    total: int = 0
    refused: int = 0
    examples: list[str] = field(default_factory=list)
    fingerprint: str = ""
    details: dict[str, str] = field(default_factory=dict)


def check_records(job: RecordsJob, items: Iterable[SourceItem], keys: set[str] | None = None) -> RecordCheck:
    """Read every record once; raise on duplicate ids, count the ones that cannot be sent.

    With ``keys``, also collect the request key of every record to send (for the cache).
    """
    result = RecordCheck()
    seen: set[str | int] = set()
    duplicates: list[str] = []
    input_hash = hashlib.sha256()
    for item in items:
        result.total += 1
        row_id, messages, problem = job.prepare(item)
        if keys is not None and messages is not None:
            key = _key(job, row_id, item.value, messages)
            if key is not None:
                keys.add(key)
        if row_id in seen:
            duplicates.append(f"{row_id!r} (position {item.position})")
        seen.add(row_id)
        if problem is not None:
            result.refused += 1
            if len(result.examples) < _EXAMPLES:
                result.examples.append(problem)
        input_hash.update(json.dumps([row_id, item.value], sort_keys=True, default=str).encode())
        input_hash.update(b"\n")
    if duplicates:
        shown = ", ".join(duplicates[:_EXAMPLES])
        raise DuplicateRecordIdError(
            f"{len(duplicates)} record(s) repeat an id of field {job.id_field!r}: {shown}. Ids must be unique "
            "so each result row can be matched to its record; de-duplicate the input or choose another id_field."
        )
    result.details = {"input": input_hash.hexdigest()[:16], **job.settings_fingerprint()}
    result.fingerprint = _digest(result.details)
    return result


def _key(job: RecordsJob, row_id: str | int, record: Any, messages: list[dict[str, Any]]) -> str | None:
    if job.attachments is None:
        return request_key(job.body(messages))
    return job.attachments.key(job, row_id, record, messages)  # reads the files, one record at a time


def work(job: RecordsJob, items: Iterable[SourceItem], done: set[Any] | None = None) -> Iterator[WorkItem | ResultRow]:
    """Requests for records not yet done, and rows for records that cannot be sent."""
    done = done or set()
    completion = job.completion_estimate()
    for item in items:
        row_id, messages, problem = job.prepare(item)
        if row_id in done:
            continue
        kept = job.kept(item)
        if messages is None:
            yield replace(invalid_record_row(row_id, problem or "record refused"), input=kept)
        elif job.attachments is not None:
            ready = job.attachments.request(job, row_id, item.value, messages)  # the files are read here
            yield replace(ready, kept=kept) if isinstance(ready, WorkItem) else replace(ready, input=kept)
        else:
            yield WorkItem(row_id, job.body(messages), PromptTemplate.estimate_tokens(messages) + completion, kept=kept)
