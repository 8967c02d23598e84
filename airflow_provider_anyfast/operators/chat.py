"""AnyFastChatOperator: one prompt, one answer (text, or a validated JSON value).

Declarative: it checks its arguments when the DAG is parsed, renders its templated
fields, hands the call to the hook, and returns what goes to XCom.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from airflow_provider_anyfast.compat import BaseOperator, Context
from airflow_provider_anyfast.core.jsonmode import OutputSchema
from airflow_provider_anyfast.core.params import validate_params
from airflow_provider_anyfast.core.records.meter import MeterDelta
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook, Messages
from airflow_provider_anyfast.operators.arguments import operator_label, own_arguments, split_api_params
from airflow_provider_anyfast.operators.observability import ChatObservability, stats_reporter

Schema = type[BaseModel] | Mapping[str, Any]


class AnyFastChatOperator(ChatObservability, BaseOperator):
    """One completion: returns the text, or the validated JSON value when ``output_schema`` is set.

    :param prompt: the user message (templated); or give ``messages`` instead.
    :param system_prompt: an optional system message (templated).
    :param output_schema: a pydantic model class or JSON-schema dict: JSON mode, validated.
    :param model: the model; defaults to the connection's ``model`` extra.
    :param completion_params: max_tokens, temperature, ... as in the API, checked before sending.
        Each may also be given directly: ``AnyFastChatOperator(..., temperature=0, max_tokens=256)``.
    :param attachments: files sent with the prompt (templated): ``s3://``, ``gs://``, ``file://`` URIs
        read with ``storage_conn_id``, or ``https://`` URLs; see docs/operators.md.
    :param storage_conn_id: the connection for ``attachments`` (templated).
    """

    template_fields: Sequence[str] = ("prompt", "messages", "system_prompt", "model", "attachments", "storage_conn_id")
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        prompt: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        output_schema: Schema | None = None,
        model: str | None = None,
        anyfast_conn_id: str = AnyFastHook.default_conn_name,
        max_output_retries: int = 1,
        completion_params: dict[str, Any] | None = None,
        attachments: str | list[str] | None = None,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        completion_params = split_api_params(
            kwargs, completion_params, owner=operator_label(type(self), kwargs), accepted=own_arguments(type(self))
        )
        super().__init__(**kwargs)
        if (prompt is None) == (messages is None):
            raise ValueError(f"{self.task_id}: give exactly one of 'prompt' or 'messages'")
        self.prompt = prompt
        self.messages = messages
        self.system_prompt = system_prompt
        self.output_schema = output_schema
        self.model = model
        self.anyfast_conn_id = anyfast_conn_id
        self.max_output_retries = max_output_retries
        self.completion_params = completion_params
        self.attachments = attachments
        self.storage_conn_id = storage_conn_id
        validate_params(self.completion_params)  # a bad value fails at DAG parse time, for free
        OutputSchema.coerce(output_schema)

    @cached_property
    def hook(self) -> AnyFastHook:
        return AnyFastHook(anyfast_conn_id=self.anyfast_conn_id, storage_conn_id=self.storage_conn_id)

    def _messages(self) -> Messages:
        messages: list[dict[str, Any]] = list(self.messages or [{"role": "user", "content": self.prompt}])
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def execute(self, context: Context) -> Any:
        if self.output_schema is None:
            text = self.hook.chat_completion(
                self._messages(), model=self.model, attachments=self.attachments, **self.completion_params
            ).text
            self._report_call()
            return text
        value = self.hook.complete_json(
            self._messages(), schema=self.output_schema, model=self.model, attachments=self.attachments,
            max_output_retries=self.max_output_retries, **self.completion_params,
        )  # fmt: skip
        self._report_call()
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value

    def _report_call(self) -> None:
        """The call's model and usage, for the lineage event and the metrics; a metrics failure only warns."""
        model, usage, attempts = getattr(self.hook, "last_call", (None, {}, 1))
        self._chat_model, self._chat_usage = model, usage
        delta = MeterDelta(model=model or self.model or "", requests=attempts, retries=attempts - 1, tokens=usage)
        try:
            stats_reporter(self)(delta)
        except Exception as exc:  # a metrics backend that is down must never fail the task
            self.log.warning("AnyFast metrics could not be reported: %s", exc)
