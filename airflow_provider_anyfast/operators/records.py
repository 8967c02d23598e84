"""AnyFastRecordsOperator: many records in one task, one validated result row per record.

Declarative: it checks what it can when the DAG is parsed, turns its rendered fields
into a job, a source and a sink, hands them to the Airflow-free record runner, and
returns the rows (XCom mode) or the manifest (storage mode).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any

from airflow_provider_anyfast.assets import OutletAsset, declared_outlet, publish_event
from airflow_provider_anyfast.compat import AirflowFailException, BaseOperator, Context, display_uri, provider_setting
from airflow_provider_anyfast.core.attachments import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_REQUEST_BYTES
from airflow_provider_anyfast.core.jsonmode import OutputSchema
from airflow_provider_anyfast.core.limits.account import AccountLimits
from airflow_provider_anyfast.core.params import validate_params
from airflow_provider_anyfast.core.records.attach import RecordAttachments
from airflow_provider_anyfast.core.records.cache import ResultCache
from airflow_provider_anyfast.core.records.cost import Price, parse_price_table
from airflow_provider_anyfast.core.records.plan import RecordsJob
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.runner import ErrorRateExceededError, RunSpec, run_records
from airflow_provider_anyfast.core.records.settings import DEFAULT_CONTEXT_TOKENS, RunSettings
from airflow_provider_anyfast.core.records.sink import MemoryRowSink, RowSink
from airflow_provider_anyfast.core.records.source import SourceItem, input_files, iter_files, iter_source
from airflow_provider_anyfast.core.records.spend import markdown_summary
from airflow_provider_anyfast.core.records.stopping import EVERY_RECORD as STOPS_THE_RUN
from airflow_provider_anyfast.core.records.store import RowStore
from airflow_provider_anyfast.exceptions import AnyFastError
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.operators.arguments import operator_label, own_arguments, split_api_params
from airflow_provider_anyfast.operators.chat import Schema
from airflow_provider_anyfast.operators.messages import check_records_string
from airflow_provider_anyfast.operators.observability import RecordsObservability, stats_reporter, upstream_task_ids
from airflow_provider_anyfast.operators.templated import RUN_SETTINGS, TEMPLATED_SETTINGS, run_settings
from airflow_provider_anyfast.storage import attachment_loader, storage_path

DEFAULT_MAX_XCOM_BYTES = 5 * 1024 * 1024
#: What attachment templates see (the prompt itself sees the task's whole template context).
RUN_CONTEXT_KEYS = ("ds", "ds_nodash", "ts", "run_id", "params")
log = logging.getLogger("airflow_provider_anyfast.records")


class AnyFastRecordsOperator(RecordsObservability, BaseOperator):
    """Many records in one task: one validated JSON answer (a result row) per record.

    :param records: a list of dicts (an upstream XCom), or the URI / ObjectStoragePath of a
        JSON Lines file or folder of them (templated). Storage input is streamed.
    :param prompt: a Jinja template rendered per record, with ``record`` and the task's whole
        template context (``params``, ``run_id``, ``dag_run``, ``macros``, ``var``...),
        e.g. ``"Classify: {{ record.text }}"``.
    :param output_schema: pydantic model class or JSON-schema dict each answer must match.
    :param id_field: the record field that identifies it in the output (default: position).
    :param output_path: where rows go (templated URI); without it, rows go to XCom.
    :param storage_conn_id: connection for object storage paths given as strings (templated, as is
        ``anyfast_conn_id``).
    :param max_concurrency: requests in flight at once within this task.
    :param requests_per_minute: client-side request rate limit.
    :param tokens_per_minute: client-side token rate limit (estimated before, settled after).
    :param max_total_tokens: a budget: once spent, no new request is sent.
    :param max_error_rate: share of records that may end without a valid answer.
    :param max_input_tokens: records whose estimated prompt exceeds this are refused unsent.
    :param completion_params: max_tokens, temperature, ... as in the API, checked before sending;
        each may also be given directly (``temperature=0``).
    :param dedup: send identical rendered requests once; the other records share the answer.
    :param cache_path: URI of a content-addressed answer cache shared across runs (templated); default:
        the ``[anyfast] cache_path`` setting of the Airflow installation, if any.
    :param cache_max_age: seconds after which cached answers are ignored.
    :param refresh: bypass the cache for reads (new answers are still written to it).
    :param prices: per-model price table (per million tokens: input, output, cached_input);
        defaults to the connection's ``price_table`` extra. Gives the manifest's estimated cost.
    :param max_cost: a budget in the price table's currency: once spent, no new request is sent.
    :param attachments: files to send with each record: a record field holding one or more
        references (``s3://``, ``gs://``, ``file://`` read with ``storage_conn_id``, or ``https://``),
        or a Jinja template rendered per record (one reference per line, or a JSON list).
        Images and PDFs go as ``image_url`` parts, text files as text parts (docs/operators.md).
    :param max_attachment_bytes: the largest file sent; a larger one makes its record an error row.
    :param max_request_attachment_bytes: the most bytes of files in one request.
    :param presign_attachments: send ``s3://`` files as presigned URLs valid this many seconds
        instead of their bytes (the gateway must reach the bucket's endpoint).
    :param keep_fields: input fields copied into each row (under ``input``), so downstream tasks
        need not re-read and join the input.
    :param budget_scope: with shared limits (the connection's ``limits_conn_id``), ``max_total_tokens`` and
        ``max_cost`` count for the whole task across its map indexes in one DAG run; a name here (e.g.
        ``"classify-{{ ds[:7] }}"``, templated) makes them count for every run that uses it instead.
    :param outlet_asset: the Asset (or URI) this task updates; its event carries the run's counts.
        Default: ``output_path`` itself when it has no Jinja; ``False``: none (see docs/operators.md).
    """

    template_fields: Sequence[str] = (
        "records", "output_path", "system_prompt", "model", "cache_path", "anyfast_conn_id", "storage_conn_id",
        *TEMPLATED_SETTINGS,
    )  # fmt: skip
    ui_color = "#a9d6ff"

    def __init__(
        self,
        *,
        records: Any,
        prompt: str,
        output_schema: Schema | None = None,
        system_prompt: str | None = None,
        id_field: str | None = None,
        model: str | None = None,
        anyfast_conn_id: str = AnyFastHook.default_conn_name,
        output_path: Any = None,
        storage_conn_id: str | None = None,
        max_concurrency: int = 8,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_total_tokens: int | None = None,
        max_error_rate: float = 0.0,
        max_output_retries: int = 1,
        max_input_tokens: int = DEFAULT_CONTEXT_TOKENS,
        use_json_schema: bool = False,
        progress_interval: float = 30.0,
        chunk_rows: int = 1000,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        completion_params: dict[str, Any] | None = None,
        dedup: bool = True,
        cache_path: Any = None,
        cache_max_age: float | None = None,
        refresh: bool = False,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        max_cost: float | None = None,
        budget_scope: str | None = None,
        outlet_asset: OutletAsset = None,
        attachments: str | list[str] | None = None,
        max_attachment_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_request_attachment_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        presign_attachments: int | None = None,
        keep_fields: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        completion_params = split_api_params(
            kwargs, completion_params, owner=operator_label(type(self), kwargs), accepted=own_arguments(type(self))
        )
        super().__init__(**kwargs)
        self.outlet_asset = declared_outlet(output_path, outlet_asset)
        if self.outlet_asset is not None and self.outlet_asset not in self.outlets:
            self.outlets = [*self.outlets, self.outlet_asset]
        self.records = records
        self._records_upstream = upstream_task_ids(records)  # for lineage: the XComArg is rendered away
        self._literal_records = records if isinstance(records, list | tuple) else None
        self.prompt = prompt
        self.output_schema = output_schema
        self.system_prompt = system_prompt
        self.id_field = id_field
        self.model = model
        self.anyfast_conn_id = anyfast_conn_id
        self.output_path = output_path
        self.storage_conn_id = storage_conn_id
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.max_total_tokens = max_total_tokens
        self.max_error_rate = max_error_rate
        self.max_output_retries = max_output_retries
        self.max_input_tokens = max_input_tokens
        self.use_json_schema = use_json_schema
        self.progress_interval = progress_interval
        self.chunk_rows = chunk_rows
        self.max_xcom_bytes = max_xcom_bytes
        self.dedup = dedup
        self.cache_path = cache_path
        self.cache_max_age = cache_max_age
        self.refresh = refresh
        self.prices = dict(prices) if prices is not None else None
        self.max_cost = max_cost
        self.completion_params = completion_params
        self.budget_scope = budget_scope
        self.attachments = attachments
        self.max_attachment_bytes = max_attachment_bytes
        self.max_request_attachment_bytes = max_request_attachment_bytes
        self.presign_attachments = presign_attachments
        self.keep_fields = keep_fields
        self._cancel = threading.Event()
        self.run_settings = self._settings()  # literal settings fail here, when the DAG is parsed
        self.keep_fields = self.run_settings.keep_fields
        parse_price_table(self.prices)
        validate_params(self.completion_params)
        self.schema = OutputSchema.coerce(self.output_schema)
        PromptTemplate(self.prompt)  # a syntax error fails here, not per record
        if self.attachments is not None:
            RecordAttachments(self.attachments, self._loader())  # a bad spec or cap fails at parse time

    def _settings(self, *, rendered: bool = False) -> RunSettings:
        """The run's settings from the flat arguments (the templated ones once ``rendered``, in ``execute``)."""
        settings, values = run_settings(self.task_id, {name: getattr(self, name) for name in RUN_SETTINGS}, rendered)
        for name, value in values.items():
            setattr(self, name, value)  # a rendered "{{ params.budget }}" is the number from here on
        return settings

    def _loader(self) -> Any:
        return attachment_loader(
            self.storage_conn_id, max_file_bytes=self.max_attachment_bytes,
            max_request_bytes=self.max_request_attachment_bytes, presign_seconds=self.presign_attachments,
        )  # fmt: skip

    def render_template(self, content: Any, context: Any, jinja_env: Any = None, seen_oids: Any = None) -> Any:
        """Records typed into the DAG are data: ``{{ ds }}`` or ``{# #}`` in a record's text is sent as is.

        Only strings the user wrote as templates are rendered (a URI, an XCom pull, the other fields).
        """
        if content is not None and content is self._literal_records:
            return content
        return super().render_template(content, context, jinja_env, seen_oids)

    @cached_property
    def hook(self) -> AnyFastHook:
        return AnyFastHook(anyfast_conn_id=self.anyfast_conn_id, pool_size=self.max_concurrency)

    def _job(self, context: Context) -> RecordsJob:
        request = self.hook.request(
            self.model, self.completion_params, schema=self.schema, json_mode=True, use_json_schema=self.use_json_schema
        )
        template = PromptTemplate(self.prompt, context=context)
        run_context = {key: context[key] for key in RUN_CONTEXT_KEYS if key in context}  # type: ignore[literal-required]
        files = None if self.attachments is None else RecordAttachments(self.attachments, self._loader(), run_context)
        return RecordsJob(
            template=template, request=request, id_field=self.id_field, system_prompt=self.system_prompt,
            max_input_tokens=self.run_settings.max_input_tokens, attachments=files,
            keep_fields=self.run_settings.keep_fields,
        )  # fmt: skip

    def _sink(self, context: Context) -> tuple[RowSink, str]:
        if self.output_path in (None, ""):
            return MemoryRowSink(self.max_xcom_bytes), "XCom"
        root = storage_path(self.output_path, self.storage_conn_id, field="output_path")
        map_index = context["ti"].map_index if "ti" in context else -1
        if map_index is not None and map_index >= 0:
            root = root / f"map_index={map_index}"
        return RowStore(root, chunk_rows=self.chunk_rows, holder=_holder(context)), display_uri(root)

    def _source(self) -> tuple[Callable[[], Iterator[SourceItem]], str | None]:
        """How to read the records (twice: a checking pass, then a working pass), and the input's
        URI when it is storage (which must hold at least one record)."""
        records = self.records
        if isinstance(records, str):
            check_records_string(self.task_id, records)
        if isinstance(records, str) or hasattr(records, "open"):
            root = storage_path(records, self.storage_conn_id, field="records")
            files = input_files(root)
            return (lambda: iter_files(files)), display_uri(root)
        if isinstance(records, Mapping):
            raise TypeError(f"{self.task_id}: records must be a list of dicts or a storage URI, not a single dict")
        items = list(records) if records is not None else []
        return (lambda: iter_source(items)), None

    def _price(self, model: str) -> Price | None:
        """The model's price from ``prices``, else from the connection's ``price_table`` extra."""
        table = parse_price_table(self.prices if self.prices is not None else self.hook.settings.price_table)
        price = table.get(model)
        if self.max_cost is not None and price is None:
            raise ValueError(
                f"{self.task_id}: max_cost needs a price for model {model!r}: add it to 'prices' or to the "
                "connection's 'price_table' extra"
            )
        return price

    def _cache(self) -> ResultCache | None:
        """``cache_path``, else the ``[anyfast] cache_path`` setting an administrator gave every task."""
        if self.cache_path not in (None, ""):
            root = storage_path(self.cache_path, self.storage_conn_id, field="cache_path")
        elif (default := provider_setting("cache_path")) is not None:
            conn_id = provider_setting("cache_conn_id") or self.storage_conn_id
            root = storage_path(default, conn_id, field="[anyfast] cache_path")
        else:
            return None
        return ResultCache(root, max_age=self.run_settings.cache_max_age, refresh=self.run_settings.refresh)

    def _account(self, context: Context) -> AccountLimits:
        """The connection's limits; shared budgets count for this task in this DAG run, or the named scope."""
        if scope := self.run_settings.budget_scope:
            return self.hook.account_limits(f"named:{scope}", named_budget=True)
        ti = context.get("ti")
        job = f"{getattr(ti, 'dag_id', None) or self.dag_id}/{self.task_id}/{context.get('run_id', 'manual')}"
        return self.hook.account_limits(f"job:{job}")

    def execute(self, context: Context) -> Any:
        self._cancel = threading.Event()  # a retry run by the same process (dag.test) starts un-cancelled
        self._run_totals = None
        self.run_settings = self._settings(rendered=True)
        source, input_uri = self._source()
        sink, location = self._sink(context)
        job = self._job(context)
        spec = RunSpec(
            job=job, schema=self.schema, location=location, cache=self._cache(), input_uri=input_uri,
            report=(reporter := stats_reporter(self)),
            settings=replace(self.run_settings, price=self._price(job.model), account=self._account(context)),
        )  # fmt: skip
        try:
            summary = run_records(self.hook.get_conn(), spec, source, sink, cancel=self._cancel)
        except ErrorRateExceededError as exc:
            self._run_totals = exc.summary
            if not sink.durable:  # keep every row, failed ones included, for inspection
                context["ti"].xcom_push(key="rows", value=exc.summary["rows"])
            raise
        except AnyFastError as exc:
            stopped = getattr(exc, "summary", None)
            self._run_totals = stopped if stopped is not None else reporter.totals()  # for the lineage event
            if stopped is not None and not sink.durable:
                context["ti"].xcom_push(key="rows", value=stopped["rows"])
            retry_helps = getattr(exc, "retry_helps", False)  # e.g. the shared budget's Redis was unreachable
            if not retry_helps and (isinstance(exc, STOPS_THE_RUN) or stopped is not None):  # retries would fail too
                raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
            raise
        except BaseException:
            self._run_totals = reporter.totals()  # what the run did before it failed, for the lineage event
            raise
        self._run_totals = summary
        spend = markdown_summary({**summary, "path": location})
        log.info("AnyFast run summary:\n%s", spend)
        if self.outlet_asset is not None:
            publish_event(context, self.outlet_asset, {**summary, "summary": spend}, location)
        return {**summary, "path": location} if sink.durable else summary["rows"]

    def on_kill(self) -> None:
        """Stop at once: nothing more is sent, answers received are written, requests in flight are given up."""
        self._cancel.set()


def _holder(context: Context) -> dict[str, Any]:
    """Who writes an output folder, as its lease names it to a second run."""
    ti = context.get("ti")
    dag = context.get("dag")
    return {
        "dag_id": getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None),
        "run_id": context.get("run_id"),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "try_number": getattr(ti, "try_number", None),
    }
