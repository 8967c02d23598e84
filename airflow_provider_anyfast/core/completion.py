"""One JSON-mode completion, start to end: ask, check the finish, validate, re-ask.

Shared by the hook (one call) and the record engine (one call per record), so a record
in a batch is treated exactly as a single call would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.jsonmode import (
    JsonCutOffError,
    OutputSchema,
    extract_json,
    finish_kind,
)
from airflow_provider_anyfast.core.outcome import Cost
from airflow_provider_anyfast.core.request import reask_body
from airflow_provider_anyfast.core.responses import ChatCompletion
from airflow_provider_anyfast.core.retry import CallObserver
from airflow_provider_anyfast.exceptions import (
    AnyFastError,
    AnyFastFilteredOutputError,
    AnyFastInvalidOutputError,
    AnyFastOutputError,
    AnyFastTruncatedOutputError,
)


@dataclass(slots=True)
class JsonResult:
    """A validated answer, with what it cost: every attempt and every re-ask counted."""

    value: Any
    json_value: Any
    completion: ChatCompletion
    cost: Cost

    @property
    def attempts(self) -> int:
        return self.cost.attempts

    @property
    def usage(self) -> dict[str, int]:
        return dict(self.cost.usage)


def check_answer(
    completion: ChatCompletion, schema: OutputSchema | None, max_tokens: int | None = None
) -> tuple[Any, Any]:
    """(validated value, JSON value) of an answer; raises the output error that fits.

    An answer that used all of ``max_tokens`` is cut off even when the gateway says ``stop``
    (one-api reports Gemini's MAX_TOKENS that way).
    """
    text = completion.text
    reason = completion.finish_reason
    kind = finish_kind(reason)
    used = completion.usage.completion_tokens if completion.usage else 0
    if kind is None and max_tokens and used >= max_tokens:
        kind, reason = "truncated", f"{reason} with completion_tokens={used} = max_tokens"
    if kind == "truncated":
        raise AnyFastTruncatedOutputError(
            f"the answer was cut off (finish_reason={reason}); raise max_tokens",
            raw=text,
            finish_reason=completion.finish_reason,
        )
    if kind == "filtered":
        raise AnyFastFilteredOutputError(
            f"the answer was blocked by a safety filter (finish_reason={reason})",
            raw=text,
            finish_reason=reason,
        )
    if not text.strip():
        raise AnyFastInvalidOutputError(f"the answer is empty (finish_reason={reason})", raw=text, finish_reason=reason)
    try:
        value = extract_json(text)
    except JsonCutOffError as exc:
        raise AnyFastTruncatedOutputError(
            f"the answer was cut off: {exc} (finish_reason={reason}); raise max_tokens", raw=text, finish_reason=reason
        ) from None
    if schema is None:
        return value, value
    validated = schema.validate(value)
    return validated, schema.to_json(validated)


def run_json_request(
    client: AnyFastClient,
    body: dict[str, Any],
    schema: OutputSchema | None,
    *,
    max_output_retries: int = 1,
    observer: CallObserver | None = None,
) -> JsonResult:
    """Send ``body`` (from ``ChatRequest``); re-ask up to ``max_output_retries`` times on invalid JSON or a
    schema mismatch, each re-ask built by ``reask_body``.

    Every ask's cost is added with ``Cost``'s one rule; a raised error carries the total in
    ``exc.cost`` so a failed record still shows what it spent.
    """
    cost = Cost()
    current = body
    for ask in range(max_output_retries + 1):
        try:
            result = client.chat(current, observer)
        except AnyFastError as exc:
            exc.cost = cost + exc.cost
            raise
        cost = cost + result.cost
        try:
            value, json_value = check_answer(result.completion, schema, body.get("max_tokens"))
        except AnyFastOutputError as exc:
            exc.cost = cost
            raise
        except ValueError as exc:
            raw = result.completion.text
            if ask < max_output_retries:
                current = reask_body(body, raw, str(exc))
                continue
            error = AnyFastInvalidOutputError(
                f"invalid JSON answer after {ask + 1} ask(s): {exc}",
                raw=raw,
                finish_reason=result.completion.finish_reason,
            )
            error.cost = cost
            raise error from None
        return JsonResult(value, json_value, result.completion, cost)
    raise AssertionError("unreachable")  # pragma: no cover
