"""AnyFastHook: an ``anyfast`` connection turned into a client, and the calls on it.

Thin on purpose: the connection is read in one place (``get_conn``), and every call is
delegated to the Airflow-free core, which checks parameters before anything is sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from airflow_provider_anyfast import connection_form
from airflow_provider_anyfast.compat import BaseHook, mask_secret
from airflow_provider_anyfast.core.attachments import attach_to_last_user
from airflow_provider_anyfast.core.client import AnyFastClient, ChatStream, redact_url
from airflow_provider_anyfast.core.completion import run_json_request
from airflow_provider_anyfast.core.extras import EXTRAS, unknown_extras
from airflow_provider_anyfast.core.jsonmode import OutputSchema
from airflow_provider_anyfast.core.limits.account import AccountLimits, Bucket, account_key, pacing_hooks
from airflow_provider_anyfast.core.outcome import Cost
from airflow_provider_anyfast.core.params import check_model
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.core.responses import ChatCompletion
from airflow_provider_anyfast.core.retry import CallObserver, RetryPolicy
from airflow_provider_anyfast.core.settings import ConnectionSettings
from airflow_provider_anyfast.exceptions import (
    AnyFastAuthError,
    AnyFastConfigError,
    AnyFastConnectionError,
    AnyFastError,
)
from airflow_provider_anyfast.storage import attachment_loader

log = logging.getLogger(__name__)

Messages = str | Sequence[Mapping[str, Any]]
Attachments = str | Sequence[str] | None


def as_messages(messages: Messages) -> list[dict[str, Any]]:
    """A bare string is one user message; anything else is passed on as a message list."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [dict(m) if isinstance(m, Mapping) else m for m in messages]  # validated later


class AnyFastHook(BaseHook):
    """Chat completions through AnyFast, configured by an ``anyfast`` connection.

    :param anyfast_conn_id: the connection holding the API token (the password field), the base
        URL (host) and the typed extras (model, timeout, max_retries, max_retry_wait,
        extra_models).
    :param pool_size: HTTP connections kept open; set it to the number of threads that
        call the hook at once.
    :param storage_conn_id: the connection for ``attachments`` given as ``s3://``, ``gs://``, ... URIs.
    """

    conn_name_attr = "anyfast_conn_id"
    default_conn_name = "anyfast_default"
    conn_type = "anyfast"
    hook_name = "AnyFast"

    def __init__(
        self,
        anyfast_conn_id: str = default_conn_name,
        *,
        pool_size: int = 16,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.anyfast_conn_id = anyfast_conn_id
        self.pool_size = pool_size
        self.storage_conn_id = storage_conn_id

    @cached_property
    def _connection(self) -> Any:
        conn = self.get_connection(self.anyfast_conn_id)
        mask_secret(conn.password)
        host = (conn.host or "").strip()
        if "@" in host:  # a base URL with user:password in it: Airflow only masks the password field
            mask_secret(urlsplit(host if "://" in host else f"//{host}").password)
        return conn

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The connection's extras, typed and checked."""
        return ConnectionSettings.from_extras(self._connection.extra_dejson or {})

    @property
    def base_url(self) -> str:
        conn = self._connection
        host = (conn.host or "").strip()
        if host and "://" not in host and conn.schema in ("http", "https"):
            host = f"{conn.schema}://{host}"
        if host and conn.port and not host.rsplit("/", 1)[-1].count(":"):
            host = f"{host.rstrip('/')}:{conn.port}"
        return host

    def get_conn(self) -> AnyFastClient:
        """The client, built once per hook from the connection."""
        return self.client

    @cached_property
    def client(self) -> AnyFastClient:
        try:
            return self.settings.make_client(self.base_url, self._connection.password, pool_size=self.pool_size)
        except AnyFastConfigError as exc:  # no token, a base URL that is not one: say which connection
            raise AnyFastConfigError(f"connection {self.anyfast_conn_id!r}: {exc.message}") from None

    def account_limits(self, budget_scope: str | None = None, *, named_budget: bool = False) -> AccountLimits:
        """The connection's account limits, shared through the Redis of ``limits_conn_id`` when it is set.

        ``budget_scope`` names the job whose budgets are shared (used only with Redis).
        """
        settings = self.settings
        redis = None
        if settings.limits_conn_id:
            try:
                from airflow.providers.redis.hooks.redis import RedisHook
            except ImportError:
                raise AnyFastConfigError(
                    f"connection {self.anyfast_conn_id!r}: extra 'limits_conn_id' needs the Redis provider: "
                    "pip install 'airflow-provider-anyfast[redis]'"
                ) from None
            redis = RedisHook(redis_conn_id=settings.limits_conn_id).get_conn()
        return AccountLimits(
            requests_per_minute=settings.requests_per_minute,
            tokens_per_minute=settings.tokens_per_minute,
            redis=redis,
            key=account_key(self.base_url, self._connection.password),
            budget_scope=budget_scope,
            named_budget=named_budget,
        )

    @cached_property
    def _account_buckets(self) -> tuple[Bucket, Bucket | None] | None:
        """The account's buckets for this hook's own calls, when the connection sets any account limit."""
        settings = self.settings
        if not (settings.requests_per_minute or settings.tokens_per_minute or settings.limits_conn_id):
            return None
        account = self.account_limits()
        return account.requests_bucket(), account.tokens_bucket()

    def _call_hooks(self, body: Mapping[str, Any]) -> CallObserver | None:
        if self._account_buckets is None:
            return None
        pace, tokens = self._account_buckets
        estimate = len(json.dumps(body.get("messages"), default=str)) // 4 + int(body.get("max_tokens") or 0)
        return pacing_hooks(pace, tokens, estimate)

    def _paced_ok(self) -> None:
        if self._account_buckets is not None:
            self._account_buckets[0].on_success()

    def resolve_model(self, model: str | None) -> str:
        """The call's model, else the connection's default; unknown names only warn."""
        return check_model(model or self.settings.model, self.settings.extra_models)

    def request(
        self,
        model: str | None,
        params: Mapping[str, Any],
        *,
        schema: OutputSchema | None = None,
        json_mode: bool = False,
        use_json_schema: bool = False,
    ) -> ChatRequest:
        """The request builder for a call or a records run: the model (else the connection's) and params checked."""
        return ChatRequest.create(
            model=model or self.settings.model, params=params, extra_models=self.settings.extra_models,
            schema=schema, json_mode=json_mode, use_json_schema=use_json_schema,
        )  # fmt: skip

    def with_attachments(self, messages: Messages, attachments: Attachments) -> list[dict[str, Any]]:
        """The messages with the files added as content parts of the last user message.

        Each reference (``s3://``, ``gs://``, ``file://``, a local path, or ``https://``) is read with
        ``storage_conn_id`` and checked (type from content, size caps); a file that cannot be sent
        raises ``AttachmentError`` naming it, before any request.
        """
        listed = as_messages(messages)
        refs = [attachments] if isinstance(attachments, str) else list(attachments or [])
        if not refs:
            return listed
        return attach_to_last_user(listed, attachment_loader(self.storage_conn_id).load(refs))

    def chat_completion(
        self, messages: Messages, *, model: str | None = None, attachments: Attachments = None, **params: Any
    ) -> ChatCompletion:
        """One chat completion; every parameter is range-checked before the request."""
        body = self.request(model, params).body(self.with_attachments(messages, attachments))
        result = self.client.chat(body, self._call_hooks(body))
        self._paced_ok()
        self._log_usage(result.completion, result.cost)
        return result.completion

    def stream_chat_completion(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        attachments: Attachments = None,
        require_finish_reason: bool = True,
        **params: Any,
    ) -> ChatStream:
        """Stream text deltas over SSE; ``.completion`` (with usage) is set once iterated.

        A stream that ends without a finish_reason raises ``AnyFastStreamError`` (with
        ``.partial``); pass ``require_finish_reason=False`` for a gateway that never sends
        one (one-api), and accept that a stream cut upstream then looks complete.
        """
        body = self.request(model, params).body(self.with_attachments(messages, attachments), stream=True)
        return self.client.stream(body, self._call_hooks(body), require_finish_reason=require_finish_reason)

    def complete_json(
        self,
        messages: Messages,
        *,
        schema: type[BaseModel] | Mapping[str, Any] | None = None,
        model: str | None = None,
        max_output_retries: int = 1,
        use_json_schema: bool = False,
        attachments: Attachments = None,
        **params: Any,
    ) -> Any:
        """A JSON-mode completion: the parsed value, or a validated instance for a pydantic schema.

        Cut-off and filtered answers raise at once; invalid JSON or a schema mismatch is
        re-asked ``max_output_retries`` times with the problem in the conversation.
        """
        if max_output_retries < 0:
            raise ValueError("max_output_retries must be >= 0")
        output_schema = OutputSchema.coerce(schema)
        request = self.request(model, params, schema=output_schema, json_mode=True, use_json_schema=use_json_schema)
        body = request.body(self.with_attachments(messages, attachments))
        result = run_json_request(
            self.client, body, output_schema, max_output_retries=max_output_retries, observer=self._call_hooks(body)
        )
        self._paced_ok()
        self._log_usage(result.completion, result.cost)
        return result.value

    def list_models(self) -> list[str]:
        """The model ids this token may use (``GET /v1/models``, no tokens spent)."""
        return [str(m.get("id")) for m in self.client.list_models() if m.get("id")]

    def test_connection(self) -> tuple[bool, str]:
        """Check the extras, the token and the base URL with ``GET /v1/models``: spends no tokens.

        Messages say "this connection": the UI tests a copy under a random temporary id.
        """
        unknown = unknown_extras(self._connection.extra_dejson or {})
        if unknown:
            known = ", ".join(sorted(EXTRAS))
            return False, f"Unknown extra(s) {', '.join(unknown)}: they would be ignored. Known extras: {known}."
        try:  # one try, no retries: a person is waiting on the Test button
            client = self.settings.make_client(self.base_url, self._connection.password, pool_size=1)
            models = client.list_models(retry=RetryPolicy(max_retries=0))
        except AnyFastAuthError as exc:
            return (
                False,
                f"AnyFast rejected the API token (HTTP {exc.status}): check this connection's API token.",
            )
        except AnyFastConnectionError as exc:
            return (
                False,
                f"Could not reach AnyFast at {redact_url(self.base_url or 'the default URL')}: {exc.message}",
            )
        except (AnyFastError, ValueError) as exc:
            return False, f"AnyFast connection test failed: {exc}"
        return True, f"Connection OK: the token may use {len(models)} model(s)."

    def _log_usage(self, completion: ChatCompletion, cost: Cost) -> None:
        """Log what the call cost, every attempt and re-ask included, and keep it for lineage and metrics."""
        usage = dict(cost.usage)
        self.last_call = (completion.model, usage, cost.attempts)
        log.info(
            "AnyFast %s: finish_reason=%s attempts=%d tokens=%s",
            completion.model or "completion",
            completion.finish_reason,
            cost.attempts,
            usage or "n/a",
        )

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hide the fields AnyFast does not use; name the others for what they hold (Airflow 2.11's form).

        The same behaviour as the provider info's ``ui-field-behaviour`` (Airflow >= 3.2's form),
        with the key spelling the hook API uses.
        """
        return {key.replace("-", "_"): value for key, value in connection_form()[1].items()}

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Form widgets for the typed extras (shown in the connection form)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField, StringField
        from wtforms.validators import NumberRange, Optional

        # Airflow drops a hook whose widgets use any class but Integer/Password/String/BooleanField,
        # so seconds are StringFields; ConnectionSettings parses and range-checks them.
        form = connection_form()[0]
        labels, descriptions = ({n: lazy_gettext(f[key]) for n, f in form.items()} for key in ("label", "description"))
        return {
            "model": StringField(labels["model"], description=descriptions["model"], widget=BS3TextFieldWidget()),
            "timeout": StringField(
                labels["timeout"], description=descriptions["timeout"], validators=[Optional()],
                widget=BS3TextFieldWidget(),
            ),
            "max_retries": IntegerField(
                labels["max_retries"], description=descriptions["max_retries"], widget=BS3TextFieldWidget(),
                validators=[Optional(), NumberRange(min=EXTRAS["max_retries"].ge, max=EXTRAS["max_retries"].le)],
            ),
            "max_retry_wait": StringField(
                labels["max_retry_wait"], description=descriptions["max_retry_wait"], validators=[Optional()],
                widget=BS3TextFieldWidget(),
            ),
            "extra_models": StringField(
                labels["extra_models"], description=descriptions["extra_models"], widget=BS3TextFieldWidget()
            ),
            **{
                name: StringField(labels[name], description=descriptions[name], validators=[Optional()],
                                  widget=BS3TextFieldWidget())
                for name in ("requests_per_minute", "tokens_per_minute", "limits_conn_id")
            },
        }  # fmt: skip
