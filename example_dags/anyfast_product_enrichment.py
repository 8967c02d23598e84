"""
### Product enrichment with AnyFast

Every day, turn raw supplier product records into structured catalogue data: a category from
the shop's taxonomy, a list of attributes (material, weight, capacity, ...) and a short
marketing description, validated against a pydantic model before anything is stored.

**Flow:** `extract` reads a batch of product records (JSON Lines; the sample feed shipped in
`data/products.jsonl` by default) → `enrich` asks the model once per product, in parallel
within rate limits, and writes one result row per product to object storage →
`summarize` reports counts and token usage.

**Where rows go:** `<output_path>/<run_id>/rows/part-*.jsonl` plus `manifest.json`. Leave the
`output_path` param empty to use the Airflow Variable `anyfast_output_base` (one setting for
every example DAG, e.g. `s3://my-bucket/llm`) + `/product_enrichment`, or a local folder.
A retried `enrich` resumes from the rows already written: no product is paid for twice.

**Connections:** `anyfast_default` (type `anyfast`: token, base URL) and, for `s3://` paths,
the `storage_conn_id` param (default `aws_default`).
"""

from __future__ import annotations

import json
import logging
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

SAMPLE_PRODUCTS = (Path(__file__).parent / "data" / "products.jsonl").resolve().as_uri()
# The run's folder: the output_path param, else the Variable anyfast_output_base, else /tmp.
RUN_FOLDER = (
    "{{ (params.output_path or var.value.get('anyfast_output_base', 'file:///tmp/anyfast-examples')"
    " ~ '/product_enrichment').rstrip('/') }}/{{ run_id }}"
)


class Attribute(BaseModel):
    """One product property as the catalogue shows it."""

    name: str = Field(description="attribute name in lower case, e.g. 'material', 'weight', 'capacity'")
    value: str = Field(description="the value with its unit, e.g. '310 g', '750 ml', 'merino wool'")


class ProductEnrichment(BaseModel):
    """What the model must return for each product."""

    category: Literal[
        "outdoor", "sports & fitness", "kitchen", "coffee", "audio", "computing", "smart home",
        "home textiles", "kids & baby", "cycling", "e-readers & wearables", "power & energy",
    ]  # fmt: skip
    attributes: list[Attribute] = Field(min_length=1, max_length=8, description="facts stated in the input only")
    marketing_description: str = Field(max_length=400, description="one or two sentences for the product page")


PROMPT = """\
Product {{ record.sku }}: {{ record.title }} by {{ record.brand }}, {{ record.price }} {{ record.currency }}.
Supplier description: {{ record.supplier_description }}
"""

SYSTEM_PROMPT = (
    "You enrich product data for an online shop. Choose the category that fits best, list up to "
    "eight attributes that the supplier description states (never invent specifications), and "
    "write a factual, friendly marketing description in English without superlatives."
)


@dag(
    dag_id="anyfast_product_enrichment",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Berlin"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["anyfast", "llm", "enrichment"],
    doc_md=__doc__,
    params={
        "model": Param("gemini-2.5-flash", type="string", description="AnyFast model name"),
        "input_path": Param(SAMPLE_PRODUCTS, type="string", description="JSON Lines file of product records"),
        "output_path": Param(None, type=["null", "string"], description="folder URI for result rows (empty: see docs)"),
        "batch_size": Param(1000, type="integer", minimum=1, description="products taken per run at most"),
        "storage_conn_id": Param("aws_default", type="string", description="connection for s3:// paths"),
        "anyfast_conn_id": Param("anyfast_default", type="string", description="the anyfast connection"),
    },
)
def anyfast_product_enrichment() -> None:
    @task
    def extract(**context: Any) -> list[dict[str, Any]]:
        """Read up to ``batch_size`` product records; in production, the supplier feed's daily export."""
        params = context["params"]
        products: list[dict[str, Any]] = []
        with to_storage_path(params["input_path"], params["storage_conn_id"]).open("r", encoding="utf-8") as feed:
            while len(products) < params["batch_size"] and (line := feed.readline()):
                if line.strip():
                    products.append(json.loads(line))
        log.info("Extracted %d product records from %s", len(products), params["input_path"])
        return products

    enrich = AnyFastRecordsOperator(
        task_id="enrich",
        records=extract(),
        id_field="sku",
        prompt=PROMPT,
        system_prompt=SYSTEM_PROMPT,
        output_schema=ProductEnrichment,
        model="{{ params.model }}",
        anyfast_conn_id="{{ params.anyfast_conn_id }}",
        output_path=RUN_FOLDER,
        # The folder comes from a param or a Variable, unknown when the DAG is parsed: to publish an
        # Asset, name it (outlet_asset="s3://my-bucket/llm/product_enrichment").
        outlet_asset=False,
        storage_conn_id="{{ params.storage_conn_id }}",
        max_concurrency=8,
        requests_per_minute=600,
        max_total_tokens=2_000_000,  # a budget: a runaway input cannot spend more than this per run
        max_error_rate=0.05,
        completion_params={"temperature": 0.2},
    )

    @task
    def summarize(result: dict[str, Any]) -> dict[str, Any]:
        """One line per run for the logs and XCom: what was enriched, what failed, what it cost."""
        counts, usage = result.get("counts", {}), result.get("usage", {})
        report = {
            "output": result["path"],
            "products": result["records"],
            "enriched": counts.get("success", 0),
            "failed": result["records"] - counts.get("success", 0),
            "requests": result["requests"],
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
        }
        log.info("Product enrichment: %s", json.dumps(report))
        return report

    summarize(enrich.output)


product_enrichment_dag = anyfast_product_enrichment()

if __name__ == "__main__":
    product_enrichment_dag.test()
