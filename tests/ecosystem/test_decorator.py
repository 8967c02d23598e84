"""``@task.anyfast``: registered with Airflow, runs in a real ``dag.test()``, maps with ``.expand()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_anyfast.compat import AIRFLOW_V3
from airflow_provider_anyfast.decorators.anyfast import (
    PROMPT_FROM_CALLABLE,
    _AnyFastDecoratedOperator,
    anyfast_task,
    prompt_or_messages,
)
from airflow_provider_anyfast.exceptions import AnyFastParameterError
from airflow_provider_anyfast.testing.server import AnyFastTestServer

if AIRFLOW_V3:
    from airflow.sdk import DAG, task
else:
    from airflow.decorators import task
    from airflow.models.dag import DAG

RunDag = Callable[[str, str], Any]  # the run_dag fixture of tests/conftest.py

DECORATED_DAG = """
from pydantic import BaseModel


class Sentiment(BaseModel):
    label: str
    score: float


@dag(dag_id=DAG_ID, schedule=None, start_date=START, catchup=False)
def decorated():
    @task
    def pick() -> str:
        return "The parcel arrived two days late and the box was crushed."

    @task.anyfast(
        model="gemini-2.5-pro",
        system_prompt="You write one-line summaries for {{ dag.dag_id }}.",
        completion_params={"max_tokens": 64, "temperature": 0},
    )
    def summarize(text: str) -> str:
        return "Summarize this review: " + text + " {{ not a template }}"

    @task.anyfast(output_schema=Sentiment)
    def classify(text: str, ds=None) -> list[dict]:
        return [{"role": "user", "content": f"Sentiment on {ds} of: {text}"}]

    summarize(pick())
    classify.expand(text=["I love it", "It broke at once", "It is fine"])


decorated()
"""


def chat_bodies(server: AnyFastTestServer) -> list[dict]:
    return [r.body for r in server.requests if r.path == "/v1/chat/completions"]


def test_task_anyfast_is_the_registered_decorator() -> None:
    assert task.anyfast is anyfast_task  # looked up in get_provider_info()["task-decorators"]


def test_decorated_tasks_run_plain_json_and_mapped(run_dag: RunDag, anyfast_conn: AnyFastTestServer) -> None:
    ran = run_dag(DECORATED_DAG, "eco_decorated")
    assert ran.state == "success"

    summary = ran.xcom("summarize")
    assert summary.startswith("Echo: Summarize this review: The parcel arrived two days late")
    assert "{{ not a template }}" in summary  # the returned prompt is data, never rendered
    if AIRFLOW_V3:  # the UI shows the prompt sent (2.11 keeps the fields rendered before execute)
        assert ran.rendered_fields("summarize")["prompt"].startswith("Summarize this review: The parcel arrived")

    labels = ran.xcoms("classify")
    assert sorted(labels) == [0, 1, 2]
    for value in labels.values():
        assert set(value) == {"label", "score"} and isinstance(value["score"], float)

    bodies = chat_bodies(anyfast_conn)
    assert len(bodies) == 4
    (plain,) = [b for b in bodies if b["model"] == "gemini-2.5-pro"]
    assert plain["messages"][0] == {"role": "system", "content": "You write one-line summaries for eco_decorated."}
    assert plain["max_tokens"] == 64 and plain["temperature"] == 0
    mapped = [b for b in bodies if b is not plain]
    assert {b["model"] for b in mapped} == {"gemini-2.5-flash"}  # the connection's default
    assert all(b["response_format"]["type"] == "json_object" for b in mapped)
    texts = sorted(b["messages"][-1]["content"] for b in mapped)
    assert all(" of: " in t and "Sentiment on 20" in t for t in texts)  # ds came from the context
    assert [t.split(" of: ")[1] for t in texts] == ["I love it", "It broke at once", "It is fine"]


BAD_RETURN_DAG = """
@dag(dag_id=DAG_ID, schedule=None, start_date=START, catchup=False)
def bad_return():
    @task.anyfast
    def nothing() -> int:
        return 42

    nothing()


bad_return()
"""


def test_a_function_that_returns_no_prompt_fails_the_task_unsent(
    run_dag: RunDag, anyfast_conn: AnyFastTestServer
) -> None:
    ran = run_dag(BAD_RETURN_DAG, "eco_bad_return")
    assert ran.state == "failed"
    assert chat_bodies(anyfast_conn) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Hello", ("Hello", None)),
        ([{"role": "user", "content": "Hi"}], (None, [{"role": "user", "content": "Hi"}])),
    ],
)
def test_prompt_or_messages_accepts_a_string_or_a_message_list(value: object, expected: tuple) -> None:
    assert prompt_or_messages(value) == expected


@pytest.mark.parametrize("value", ["", "   ", [], None, {"role": "user", "content": "Hi"}, ["Hi"], 7])
def test_prompt_or_messages_refuses_anything_else(value: object) -> None:
    with pytest.raises(TypeError, match=r"@task.anyfast function"):
        prompt_or_messages(value)


def test_the_operator_is_built_at_parse_time_with_its_arguments_checked() -> None:
    with DAG("eco_parse", schedule=None):

        @task.anyfast(system_prompt="Be brief.", model="gemini-2.5-flash-lite", retries=2)
        def ask(topic: str) -> str:
            return f"One fact about {topic}"

        op = ask("owls").operator
    assert isinstance(op, _AnyFastDecoratedOperator)
    assert op.custom_operator_name == "@task.anyfast"
    assert op.prompt == PROMPT_FROM_CALLABLE and op.messages is None
    assert (op.system_prompt, op.model, op.retries, list(op.op_args)) == (
        "Be brief.",
        "gemini-2.5-flash-lite",
        2,
        ["owls"],
    )
    assert {"op_args", "op_kwargs", "prompt", "system_prompt", "model"} <= set(op.template_fields)


def test_bad_completion_params_fail_at_parse_time() -> None:
    with DAG("eco_parse_bad", schedule=None), pytest.raises(AnyFastParameterError, match="temperature"):

        @task.anyfast(completion_params={"temperature": 9})
        def ask() -> str:
            return "Hi"

        ask()


def test_a_prompt_argument_is_refused() -> None:
    with DAG("eco_parse_prompt", schedule=None), pytest.raises(TypeError, match="takes no 'prompt'"):

        @task.anyfast(prompt="fixed")
        def ask() -> str:
            return "Hi"

        ask()
