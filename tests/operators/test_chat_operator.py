"""AnyFastChatOperator in real ``dag.test()`` runs against the local AnyFast-compatible server."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

BODY = """
import pendulum
from pydantic import BaseModel

from airflow.sdk import DAG
from airflow_provider_anyfast.operators.anyfast import AnyFastChatOperator


class City(BaseModel):
    name: str
    population: int


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}

with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, params={"who": "Ada"}) as dag:
    AnyFastChatOperator(
        task_id="text", prompt="Say hello to {{ params.who }}", system_prompt="Be brief, {{ params.who }}.",
        model="gemini-2.0-flash", completion_params={"temperature": 0.2, "max_tokens": 64},
    )
    AnyFastChatOperator(task_id="pydantic", prompt="A city, please", output_schema=City)
    AnyFastChatOperator(task_id="json_schema", prompt="An answer, please", output_schema=SCHEMA)
    AnyFastChatOperator(
        task_id="messages",
        messages=[{"role": "user", "content": "First {{ params.who }}"}, {"role": "assistant", "content": "Yes?"},
                  {"role": "user", "content": "Then again"}],
    )
"""


def bodies(server: AnyFastTestServer) -> dict[str, dict[str, Any]]:
    """Request bodies keyed by the text of their first user message."""
    found = {}
    for request in server.requests:
        first_user = next(m["content"] for m in request.body["messages"] if m["role"] == "user")
        found[first_user] = request.body
    return found


def test_chat_operator_returns_text_or_validated_json(anyfast_conn: AnyFastTestServer, run_dag: Any) -> None:
    result = run_dag(BODY, "chat_operator")

    assert result.ok, result.output[-3000:]
    assert result.xcom("text") == "Echo: Say hello to Ada"
    city = result.xcom("pydantic")
    assert set(city) == {"name", "population"} and isinstance(city["population"], int)
    assert isinstance(result.xcom("json_schema")["answer"], str)
    assert result.xcom("messages") == "Echo: Then again"

    sent = bodies(anyfast_conn)
    text = sent["Say hello to Ada"]
    assert text["messages"][0] == {"role": "system", "content": "Be brief, Ada."}  # templated too
    assert (text["model"], text["temperature"], text["max_tokens"]) == ("gemini-2.0-flash", 0.2, 64)
    assert "response_format" not in text
    city_request = sent["A city, please"]
    assert city_request["response_format"] == {"type": "json_object"}
    assert '"population"' in city_request["messages"][0]["content"]  # the schema is in the instructions
    assert [m["content"] for m in sent["First Ada"]["messages"]] == ["First Ada", "Yes?", "Then again"]

    assert result.output.count("finish_reason=stop attempts=1 tokens=") >= 4  # usage logged per call
    assert anyfast_conn.token not in result.output


def test_invalid_json_answer_fails_the_task_after_a_reask(anyfast_conn: AnyFastTestServer, run_dag: Any) -> None:
    anyfast_conn.add_rule("A city", Fault("invalid_json"))
    result = run_dag(BODY, "chat_operator_invalid")

    assert result.state == "failed"
    states = result.instance_states()
    assert states[("pydantic", -1)] == "failed" and states[("text", -1)] == "success"
    city_requests = [r for r in anyfast_conn.requests if "A city" in json.dumps(r.body)]
    assert len(city_requests) == 2  # max_output_retries=1: asked once more with the problem
    assert "invalid JSON answer after 2 ask(s)" in result.output


def test_bad_completion_param_fails_at_parse_time(load_dag: Any) -> None:
    bag = load_dag(BODY.replace('"temperature": 0.2', '"temperature": 7'), "chat_operator_bad")

    errors = "\n".join(bag.import_errors.values())
    assert "'temperature' must be <= 2" in errors, errors
