"""API parameters straight on the operators and the decorator; misspelt names; non-schemas refused."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_anyfast.compat import AIRFLOW_V3
from airflow_provider_anyfast.exceptions import AnyFastConfigError
from airflow_provider_anyfast.operators.anyfast import AnyFastChatOperator, AnyFastRecordsOperator
from airflow_provider_anyfast.testing.server import AnyFastTestServer

if AIRFLOW_V3:
    from airflow.sdk import DAG, task
else:
    from airflow.decorators import task
    from airflow.models.dag import DAG

BODY = """
from airflow_provider_anyfast.operators.anyfast import AnyFastChatOperator, AnyFastRecordsOperator

with DAG(DAG_ID, schedule=None, start_date=START, catchup=False):
    AnyFastChatOperator(task_id="chat", prompt="chat prompt", temperature=0, max_tokens=64)
    AnyFastRecordsOperator(
        task_id="records", records=[{"text": "records prompt"}], prompt="{{ record.text }}",
        top_p=0.5, completion_params={"max_tokens": 99},
    )

    @task.anyfast(max_tokens=16, seed=7)
    def decorated() -> str:
        return "decorated prompt"

    decorated()
"""


def sent(server: AnyFastTestServer) -> dict[str, dict[str, Any]]:
    """Request bodies keyed by their last user message."""
    return {
        [m for m in r.body["messages"] if m["role"] == "user"][-1]["content"]: r.body
        for r in server.requests
        if r.method == "POST"
    }


def test_api_parameters_given_directly_reach_the_request(anyfast_conn: AnyFastTestServer, run_dag: Any) -> None:
    result = run_dag(BODY, "direct_params")

    assert result.ok, result.output[-3000:]
    bodies = sent(anyfast_conn)
    assert (bodies["chat prompt"]["temperature"], bodies["chat prompt"]["max_tokens"]) == (0, 64)
    assert (bodies["records prompt"]["top_p"], bodies["records prompt"]["max_tokens"]) == (0.5, 99)
    assert (bodies["decorated prompt"]["max_tokens"], bodies["decorated prompt"]["seed"]) == (16, 7)


def test_a_misspelt_argument_names_what_was_meant() -> None:
    with pytest.raises(TypeError) as caught:
        AnyFastChatOperator(task_id="t", prompt="x", temprature=0)
    message = str(caught.value)
    assert "AnyFastChatOperator(task_id='t')" in message and "'temprature' (did you mean 'temperature'?)" in message
    assert "max_tokens" in message and "completion_params" in message

    with pytest.raises(TypeError, match=r"'max_concurency' \(did you mean 'max_concurrency'"):
        AnyFastRecordsOperator(task_id="r", records=[], prompt="x", max_concurency=2)


def test_the_decorator_names_itself_not_a_private_class() -> None:
    with DAG("decorator_typo", schedule=None), pytest.raises(TypeError) as caught:

        @task.anyfast(max_tokns=16)
        def ask() -> str:
            return "x"

        ask()
    assert "@task.anyfast" in str(caught.value) and "did you mean 'max_tokens'" in str(caught.value)
    assert "_AnyFast" not in str(caught.value)


def test_a_parameter_given_twice_must_agree() -> None:
    with pytest.raises(TypeError, match="'temperature' is given twice"):
        AnyFastChatOperator(task_id="t", prompt="x", temperature=0, completion_params={"temperature": 1})
    op = AnyFastChatOperator(task_id="t2", prompt="x", temperature=1, completion_params={"temperature": 1})
    assert op.completion_params == {"temperature": 1}


def test_an_out_of_range_direct_parameter_fails_at_parse_time() -> None:
    with pytest.raises(Exception, match="'temperature' must be <= 2"):
        AnyFastChatOperator(task_id="t", prompt="x", temperature=5)


def test_a_dict_that_is_not_a_json_schema_is_refused_with_the_schema_it_means() -> None:
    with pytest.raises(AnyFastConfigError) as caught:
        AnyFastRecordsOperator(
            task_id="r", records=[], prompt="x", output_schema={"category": "string", "urgent": "boolean"}
        )
    message = str(caught.value)
    assert "is not a JSON schema" in message
    assert '"urgent": {"type": "boolean"}' in message and '"required": ["category", "urgent"]' in message
    # real schemas, an empty one (anything goes) and a pydantic-style $ref schema are accepted
    for schema in ({"type": "object"}, {}, {"enum": ["a", "b"]}, {"$ref": "#/$defs/A", "$defs": {"A": {}}}):
        AnyFastChatOperator(task_id="ok", prompt="x", output_schema=schema)


def test_a_model_typo_warns_with_the_nearest_known_name() -> None:
    from airflow_provider_anyfast.core.params import UnknownModelWarning, check_model

    with pytest.warns(UnknownModelWarning, match=r"'gemini-2.5-flsh' is not in the known list; did you mean "
                      r"'gemini-2\.5-flash'\? sending it anyway"):  # fmt: skip
        check_model("gemini-2.5-flsh")
    with pytest.warns(UnknownModelWarning) as caught:
        check_model("my-house-model")
    assert "did you mean" not in str(caught[0].message)  # nothing close: no guess
