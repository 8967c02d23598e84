"""``@task.anyfast``: a TaskFlow function returns the prompt, the task returns the answer.

For one prompt per task (or a small ``.expand()`` fan-out) built in Python. For many
records in one task (rate limits, budgets, resumable output) use AnyFastRecordsOperator.
Built the way Airflow's own providers build ``@task.bash``: a DecoratedOperator mixed
into the operator it feeds, so every AnyFastChatOperator argument works here too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar

from airflow_provider_anyfast.compat import (
    Context,
    DecoratedOperator,
    TaskDecorator,
    context_merge,
    determine_kwargs,
    task_decorator_factory,
)
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.operators.anyfast import AnyFastChatOperator, Schema

#: What the operator shows as its prompt until the function has run.
PROMPT_FROM_CALLABLE = "(returned by the decorated function at run time)"


def prompt_or_messages(value: Any) -> tuple[str | None, list[dict[str, Any]] | None]:
    """Split the function's return value into (prompt, messages); anything else is a TypeError."""
    if isinstance(value, str):
        if not value.strip():
            raise TypeError("The @task.anyfast function returned an empty prompt.")
        return value, None
    if isinstance(value, Sequence) and value and all(isinstance(m, Mapping) for m in value):
        return None, [dict(m) for m in value]
    raise TypeError(
        "The @task.anyfast function must return the prompt (a non-empty string) or the messages "
        f"(a non-empty list of dicts with 'role' and 'content'), not {type(value).__name__}: {value!r:.200}"
    )


class _AnyFastDecoratedOperator(DecoratedOperator, AnyFastChatOperator):
    """Calls the function for the prompt (or messages), then runs AnyFastChatOperator with it.

    The returned prompt is used as is, not rendered as a Jinja template: it usually holds
    data, and data may contain braces.
    """

    template_fields: Sequence[str] = (*DecoratedOperator.template_fields, *AnyFastChatOperator.template_fields)
    template_fields_renderers: ClassVar[dict[str, str]] = {**DecoratedOperator.template_fields_renderers}
    custom_operator_name: str = "@task.anyfast"
    overwrite_rtif_after_execution: bool = True  # 3.x: the UI shows the prompt that was sent

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        for name in ("prompt", "messages"):
            if name in kwargs:
                raise TypeError(f"@task.anyfast takes no {name!r}: the decorated function returns it")
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            prompt=PROMPT_FROM_CALLABLE,
            **kwargs,
        )

    def execute(self, context: Context) -> Any:
        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        self.prompt, self.messages = prompt_or_messages(self.python_callable(*self.op_args, **kwargs))
        return super().execute(context)


def anyfast_task(
    python_callable: Callable[..., Any] | None = None,
    *,
    model: str | None = None,
    system_prompt: str | None = None,
    output_schema: Schema | None = None,
    completion_params: dict[str, Any] | None = None,
    max_output_retries: int = 1,
    anyfast_conn_id: str = AnyFastHook.default_conn_name,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """Wrap a function that returns a prompt (or messages) into an AnyFast completion task.

    :param python_callable: the decorated function; its return value is the prompt (a string)
        or the messages (a list of ``{"role": ..., "content": ...}`` dicts).
    :param model: the model; defaults to the connection's ``model`` extra (templated).
    :param system_prompt: a system message put before the prompt (templated).
    :param output_schema: a pydantic model class or JSON-schema dict: the task returns the
        validated JSON value (a pydantic model is returned as its JSON dict).
    :param completion_params: max_tokens, temperature, ... as in the API, checked at parse time.
    :param max_output_retries: re-asks when the answer is not valid JSON for ``output_schema``.
    :param anyfast_conn_id: the ``anyfast`` connection to use.
    :param multiple_outputs: push each key of a dict answer as its own XCom as well.
    :param kwargs: any other BaseOperator argument (``retries``, ``pool``, ``task_id``, ...).
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_AnyFastDecoratedOperator,
        model=model,
        system_prompt=system_prompt,
        output_schema=output_schema,
        completion_params=completion_params,
        max_output_retries=max_output_retries,
        anyfast_conn_id=anyfast_conn_id,
        **kwargs,
    )
