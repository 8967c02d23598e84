"""Per-record prompts and the checking pass: missing fields, refusals, duplicates, fingerprints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_anyfast.core.jsonmode import OutputSchema
from airflow_provider_anyfast.core.records.engine import WorkItem
from airflow_provider_anyfast.core.records.plan import DuplicateRecordIdError, RecordsJob, check_records, work
from airflow_provider_anyfast.core.records.prompt import PromptTemplate, TemplateFieldError
from airflow_provider_anyfast.core.records.rows import ResultRow
from airflow_provider_anyfast.core.records.source import SourceItem, iter_source
from airflow_provider_anyfast.core.request import ChatRequest

SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}}


def job(prompt: str = "Classify: {{ record.text }}", id_field: str | None = "id", **kwargs: Any) -> RecordsJob:
    template = PromptTemplate(prompt, context=kwargs.pop("context", None))
    request = ChatRequest("gemini-2.5-flash", {}, OutputSchema(SCHEMA), json_mode=True)
    return RecordsJob(template=template, request=request, id_field=id_field, **kwargs)


def items(records: list[Any]) -> list[SourceItem]:
    return list(iter_source(records))


@pytest.mark.parametrize(
    ("prompt", "record", "field"),
    [
        ("{{ record.text }}", {"body": "x"}, "text"),
        ("{{ record['text'] }}", {"body": "x"}, "text"),
        ("{{ record.meta.lang }}", {"meta": {}}, "lang"),
    ],
)
def test_missing_field_is_named(prompt: str, record: dict[str, Any], field: str) -> None:
    with pytest.raises(TemplateFieldError, match=f"field '{field}'"):
        PromptTemplate(prompt).render(record)


def test_tojson_is_plain_sorted_json() -> None:
    record = {"b": "<b>&'\"</b>", "a": "é", "n": [1, None]}
    rendered = PromptTemplate("R: {{ record | tojson }}").render(record)
    assert rendered == 'R: {"a": "é", "b": "<b>&\'\\"</b>", "n": [1, null]}'
    assert json.loads(rendered[3:]) == record


def test_fixed_messages_come_first_and_the_record_last() -> None:
    system, user = job("Text: {{ record.t }}", system_prompt="You tag.").messages({"t": "hi"})
    assert system["role"] == "system" and system["content"].endswith("You tag.") and '"label"' in system["content"]
    assert user == {"role": "user", "content": "Text: hi"}


def test_a_syntax_error_is_refused_when_the_template_is_made() -> None:
    with pytest.raises(ValueError, match="not a valid Jinja template"):
        PromptTemplate("{{ record.text ")


def test_duplicate_ids_are_refused_naming_them() -> None:
    records = [{"id": "a", "text": "1"}, {"id": "b", "text": "2"}, {"id": "a", "text": "3"}, {"id": "b", "text": "4"}]
    with pytest.raises(DuplicateRecordIdError, match=r"2 record\(s\) repeat an id of field 'id': 'a' \(position 2\)"):
        check_records(job(), items(records))


def test_unsendable_records_are_counted_with_a_reason_each() -> None:
    records = [
        {"id": "ok", "text": "fine"},
        {"id": "no-text", "body": "x"},
        ["not", "an", "object"],
        {"text": "no id"},
        {"id": "huge", "text": "word " * 400},
    ]
    checked = check_records(job(max_input_tokens=600), items(records))
    assert (checked.total, checked.refused) == (5, 4)
    reasons = " | ".join(checked.examples)
    assert "record 'no-text': the prompt template refers to field 'text'" in reasons
    assert "record at position 2 is list, not a JSON object" in reasons
    assert "record at position 3 has no field 'id'" in reasons
    assert "record 'huge' is too large" in reasons


def test_work_skips_done_ids_and_turns_refusals_into_rows() -> None:
    records = [{"id": "a", "text": "1"}, {"id": "b"}, {"id": "c", "text": "3"}]
    out = list(work(job(), items(records), done={"a"}))
    assert [type(x) for x in out] == [ResultRow, WorkItem]
    refused, request = out
    assert isinstance(refused, ResultRow) and isinstance(request, WorkItem)
    assert refused.id == "b" and refused.error is not None and refused.error["type"] == "invalid_record"
    assert request.record_id == "c" and request.body["messages"][-1]["content"] == "Classify: 3"


def test_ids_default_to_positions() -> None:
    out = list(work(job(id_field=None), items([{"text": "x"}, {"text": "y"}])))
    assert [w.record_id for w in out if isinstance(w, WorkItem)] == [0, 1]


RECORDS = [{"id": i, "text": f"t{i}"} for i in range(3)]


def fingerprint(records: list[Any] = RECORDS, **kwargs: Any) -> dict[str, str]:
    return check_records(job(**kwargs), items(records)).details


def test_fingerprint_is_stable_and_names_what_changed() -> None:
    base = fingerprint()
    assert fingerprint() == base
    assert check_records(job(), items(RECORDS)).fingerprint == check_records(job(), items(RECORDS)).fingerprint
    changed_input = fingerprint([*RECORDS[:2], {"id": 2, "text": "edited"}])
    assert [k for k in base if base[k] != changed_input[k]] == ["input"]
    changed_prompt = fingerprint(prompt="Other: {{ record.text }}")
    assert [k for k in base if base[k] != changed_prompt[k]] == ["prompt"]


def test_fingerprint_covers_the_system_prompt() -> None:
    assert fingerprint(system_prompt="Be brief.")["prompt"] != fingerprint(system_prompt="Be verbose.")["prompt"]


def test_fingerprint_ignores_run_values_the_template_does_not_use() -> None:
    """A new DAG run (new run_id, ts) over the same input and prompt must resume, not be refused."""
    first = fingerprint(context={"run_id": "manual__1", "ts": "2024-01-01T00:00:00", "ds": "2024-01-01"})
    second = fingerprint(context={"run_id": "manual__2", "ts": "2024-01-02T00:00:00", "ds": "2024-01-02"})
    assert first == second


def test_fingerprint_covers_run_values_the_template_uses() -> None:
    prompt = "As of {{ ds }}: {{ record.text }}"
    first = fingerprint(prompt=prompt, context={"ds": "2024-01-01", "run_id": "a"})
    assert fingerprint(prompt=prompt, context={"ds": "2024-01-01", "run_id": "b"}) == first
    assert fingerprint(prompt=prompt, context={"ds": "2024-01-02", "run_id": "a"})["prompt"] != first["prompt"]
