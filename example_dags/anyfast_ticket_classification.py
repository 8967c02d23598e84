"""
### Support ticket triage with AnyFast

Every hour, classify the new support tickets (category, priority, sentiment, whether a human
must answer) and route each one to the queue that acts on it:

| sink | tickets |
|---|---|
| `urgent.jsonl` | priority `urgent` or `high`: safety, account takeovers, legal, money taken twice |
| `agents.jsonl` | the rest that need a human answer |
| `self_service.jsonl` | the rest: a help-centre answer is enough |
| `review.jsonl` | tickets whose answer failed validation: a person classifies them |

**Flow:** `classify` reads the tickets straight from storage (a JSON Lines URI, streamed; the
sample shipped in `data/tickets.jsonl` by default; in production, the hour's export from the
helpdesk) and writes one validated result row per ticket → `route` splits the rows into the
sinks under `<run folder>/routed/` → `choose_actions` branches: `alert_on_call` runs only when
there are urgent tickets, `request_review` only when some answers were invalid → `report`.

`max_error_rate=0.1`: a few invalid answers do not fail the run; they land in the review sink.
Above 10 %, `classify` fails after writing every row (a retry resumes, paying only for the
missing ones).

**Where it writes:** the `output_path` param, else the Airflow Variable `anyfast_output_base`
+ `/ticket_classification`, else `/tmp/anyfast-examples`; then `/<run_id>/` per run (every
run has one, triggered runs without a logical date too).
**Connections:** `anyfast_default`; `storage_conn_id` (default `aws_default`) for `s3://` paths.
"""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pendulum
from pydantic import BaseModel, Field

from airflow_provider_anyfast.compat import to_storage_path
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

try:  # Airflow 3
    from airflow.sdk import Param, dag, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import dag, task
    from airflow.models.param import Param

log = logging.getLogger(__name__)

SAMPLE_TICKETS = (Path(__file__).parent / "data" / "tickets.jsonl").resolve().as_uri()
# The run's folder: the output_path param, else the Variable anyfast_output_base, else /tmp.
RUN_FOLDER = (
    "{{ (params.output_path or var.value.get('anyfast_output_base', 'file:///tmp/anyfast-examples')"
    " ~ '/ticket_classification').rstrip('/') }}/{{ run_id }}"
)
SINKS = ("urgent", "agents", "self_service", "review")


class TicketClass(BaseModel):
    """What the model must return for each ticket."""

    category: Literal[
        "delivery", "payment", "refund", "return_exchange", "defect", "safety", "account_security",
        "product_question", "order_change", "privacy", "feedback", "other",
    ]  # fmt: skip
    priority: Literal["low", "normal", "high", "urgent"]
    sentiment: Literal["negative", "neutral", "positive"]
    needs_human: bool = Field(description="true when a help-centre article cannot settle the ticket")
    summary: str = Field(max_length=200, description="one sentence for the agent's queue view")


PROMPT = """\
Ticket {{ record.ticket_id }} ({{ record.channel }}, {{ record.created_at }})
Subject: {{ record.subject }}

{{ record.body }}
"""

SYSTEM_PROMPT = (
    "You triage customer support tickets for an online shop. Priority rules: safety issues (heat, "
    "burning smell, broken parts that could injure), account takeovers, legal threats and money "
    "taken without an order are urgent; payment and refund problems and angry repeat contacts are "
    "high; simple questions are low. Set needs_human to false only when a help-centre article can "
    "fully answer the ticket. Tickets may be in any language; write the summary in English."
)


def route_for(row: dict[str, Any]) -> str:
    """The sink of one result row: failed answers go to review, then priority decides."""
    if row.get("status") != "success":
        return "review"
    label = row["output"]
    if label["priority"] in ("urgent", "high"):
        return "urgent"
    return "agents" if label["needs_human"] else "self_service"


@dag(
    dag_id="anyfast_ticket_classification",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Berlin"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "support-ops", "retries": 2, "retry_delay": timedelta(minutes=2)},
    tags=["anyfast", "llm", "classification"],
    doc_md=__doc__,
    params={
        "model": Param("gemini-2.5-flash", type="string", description="AnyFast model name"),
        "input_path": Param(SAMPLE_TICKETS, type="string", description="JSON Lines file of the run's tickets"),
        "output_path": Param(
            None, type=["null", "string"], description="folder URI for rows and sinks (empty: see docs)"
        ),
        "storage_conn_id": Param("aws_default", type="string", description="connection for s3:// paths"),
        "anyfast_conn_id": Param("anyfast_default", type="string", description="the anyfast connection"),
    },
)
def anyfast_ticket_classification() -> None:
    classify = AnyFastRecordsOperator(
        task_id="classify",
        records="{{ params.input_path }}",
        id_field="ticket_id",
        prompt=PROMPT,
        system_prompt=SYSTEM_PROMPT,
        output_schema=TicketClass,
        model="{{ params.model }}",
        anyfast_conn_id="{{ params.anyfast_conn_id }}",
        output_path=RUN_FOLDER + "/classified",
        outlet_asset=False,  # the folder comes from a param or a Variable: name an Asset to publish one
        storage_conn_id="{{ params.storage_conn_id }}",
        max_concurrency=8,
        requests_per_minute=600,
        max_error_rate=0.1,
        completion_params={"temperature": 0},
    )

    @task
    def route(result: dict[str, Any], routed_folder: str, **context: Any) -> dict[str, Any]:
        """Write each ticket, with its classification, to the sink that acts on it."""
        conn_id = context["params"]["storage_conn_id"]
        tickets = {}  # the sinks carry the ticket itself: one run's tickets fit in memory
        for line in to_storage_path(context["params"]["input_path"], conn_id).read_text("utf-8").splitlines():
            if line.strip():
                ticket = json.loads(line)
                tickets[ticket["ticket_id"]] = ticket
        rows_root = to_storage_path(result["path"], conn_id)
        out = to_storage_path(routed_folder, conn_id)
        out.mkdir(parents=True, exist_ok=True)
        counts = dict.fromkeys(SINKS, 0)
        with ExitStack() as stack:
            sinks = {name: stack.enter_context((out / f"{name}.jsonl").open("w", encoding="utf-8")) for name in SINKS}
            for part in result["files"]:  # parts of at most chunk_rows (1000) rows each
                for line in (rows_root / part).read_text("utf-8").splitlines():
                    row = json.loads(line)
                    sink = route_for(row)
                    item = {**tickets.get(row["id"], {"ticket_id": row["id"]}), "classification": row["output"]}
                    if sink == "review":  # what went wrong, and what the model said, for the reviewer
                        item.update(error=row["error"], raw_answer=row["raw"])
                    sinks[sink].write(json.dumps(item, ensure_ascii=False) + "\n")
                    counts[sink] += 1
        log.info("Routed %d tickets: %s", sum(counts.values()), counts)
        return {"folder": routed_folder, "counts": counts}

    @task.branch
    def choose_actions(routed: dict[str, Any]) -> list[str]:
        """Page someone only when there is something urgent; ask for review only when needed."""
        actions = ["report"]
        if routed["counts"]["urgent"]:
            actions.append("alert_on_call")
        if routed["counts"]["review"]:
            actions.append("request_review")
        return actions

    @task
    def alert_on_call(routed: dict[str, Any]) -> int:
        """Stands in for a Slack/PagerDuty notification carrying the urgent queue's location."""
        log.warning("%d urgent ticket(s) in %s/urgent.jsonl", routed["counts"]["urgent"], routed["folder"])
        return int(routed["counts"]["urgent"])

    @task
    def request_review(routed: dict[str, Any]) -> int:
        """Stands in for opening a review task for the tickets the model could not classify."""
        log.warning("%d ticket(s) need manual triage: %s/review.jsonl", routed["counts"]["review"], routed["folder"])
        return int(routed["counts"]["review"])

    @task(trigger_rule="none_failed_min_one_success")
    def report(routed: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """The run in one line: tickets per sink and tokens spent."""
        summary = {**routed["counts"], "tickets": result["records"], "total_tokens": result["usage"]["total_tokens"]}
        log.info("Ticket triage: %s", json.dumps(summary))
        return summary

    routed = route(classify.output, RUN_FOLDER + "/routed")
    actions = choose_actions(routed)
    done = report(routed, classify.output)
    alert, review = alert_on_call(routed), request_review(routed)
    actions >> [alert, review, done]
    [alert, review] >> done


ticket_classification_dag = anyfast_ticket_classification()

if __name__ == "__main__":
    ticket_classification_dag.test()
