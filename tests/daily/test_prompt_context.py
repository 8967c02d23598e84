"""The per-record prompt: the task's whole template context, records as data, one bad record one row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.core.records.prompt import PromptTemplate, TemplateFieldError
from airflow_provider_anyfast.testing.server import AnyFastTestServer

BODY = """
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

with DAG(DAG_ID, schedule=None, start_date=START, catchup=False, params={"who": "Ada"}):
    AnyFastRecordsOperator(
        task_id="classify", records=RECORDS, id_field="id", prompt=PROMPT, max_error_rate=0.7,
        output_schema=SCHEMA,
    )
    AnyFastRecordsOperator(task_id="from_file", records=PATH, id_field="id", prompt="{{ record.text }}",
                           max_error_rate=0.5, output_schema=SCHEMA)
"""
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
RECORDS = [
    {"id": "a", "text": "typed {{ ds }} and {# kept #} as is", "n": 4},
    {"id": "b", "text": "divides by zero", "n": 0},
]
#: JSON Lines may escape a lone surrogate (a bad decode upstream); json.loads returns it as is.
LINES = '{"id": "c", "text": "broken \\ud800 text"}\n{"id": "d", "text": "fine text"}\n'
PROMPT = (
    "{{ record.text }} | {{ 100 // record.n }} | run={{ run_id }} | who={{ params.who }} "
    "| conf={{ dag_run.conf.get('x', 'none') }} | day={{ macros.ds_add('2024-01-01', 1) }}"
)


def test_prompt_sees_the_task_context_and_records_stay_data(
    anyfast_conn: AnyFastTestServer, run_dag: Any, tmp_path: Path
) -> None:
    (tmp_path / "in.jsonl").write_text(LINES)
    names = {"RECORDS": RECORDS, "PROMPT": PROMPT, "SCHEMA": SCHEMA, "PATH": str(tmp_path / "in.jsonl")}
    result = run_dag(BODY, "prompt_context", names)

    assert result.ok, result.output[-3000:]
    sent_texts = sorted(r.body["messages"][-1]["content"] for r in anyfast_conn.requests if r.method == "POST")
    assert len(sent_texts) == 2 and sent_texts[0] == "fine text"  # b and c are refused before anything is sent
    sent = sent_texts[1]
    assert sent == (
        f"typed {{{{ ds }}}} and {{# kept #}} as is | 25 | run={result.run_id} | who=Ada | conf=none | day=2024-01-02"
    )
    rows = {row["id"]: row for row in result.xcom("classify") + result.xcom("from_file")}
    assert rows["a"]["status"] == "success"
    b, c = rows["b"]["error"], rows["c"]["error"]
    assert (rows["b"]["status"], b["type"]) == ("error", "invalid_record")
    assert "record 'b'" in b["message"] and "ZeroDivisionError" in b["message"]
    assert c["type"] == "invalid_record" and "record 'c'" in c["message"] and "\\ud800" in c["message"]


def test_a_bare_field_name_suggests_record_dot_field() -> None:
    template = PromptTemplate("Classify: {{ text }}")
    with pytest.raises(TemplateFieldError, match=r"'text', which is undefined: did you mean record\.text\?"):
        template.render({"text": "hello"})
    with pytest.raises(TemplateFieldError, match=r"'txt', which is undefined: the prompt sees 'record' and"):
        PromptTemplate("{{ txt }}").render({"text": "hello"})
    with pytest.raises(TemplateFieldError, match="field 'body', which the record does not have"):
        PromptTemplate("{{ record.body }}").render({"text": "hello"})


def test_a_template_failing_on_one_record_names_the_error() -> None:
    template = PromptTemplate("{{ record.tags | join(', ') }} {{ record.price | round }}")
    assert template.render({"tags": ["a", "b"], "price": 2.4}) == "a, b 2.0"
    with pytest.raises(ValueError, match="the prompt template failed: TypeError"):
        template.render({"tags": None, "price": 2.4})
