"""Before the first paid request: is the model one this server serves? Asked of the free ``GET /v1/models``.

A model name the gateway does not serve fails every record (new-api answers 503, LiteLLM
400, others 404), so a typo in a million-record job must cost one free request, not a
million paid ones. Servers that do not offer the list (or answer it oddly) are not
judged: the run goes on and the in-run stop catches the failure after a few records.
"""

from __future__ import annotations

import difflib
import logging

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.retry import RetryPolicy
from airflow_provider_anyfast.exceptions import (
    AnyFastAuthError,
    AnyFastError,
    AnyFastModelUnavailableError,
    AnyFastQuotaExhaustedError,
)

log = logging.getLogger("airflow_provider_anyfast.records")


def check_model_served(client: AnyFastClient, model: str) -> None:
    """Raise ``AnyFastModelUnavailableError`` ("did you mean ...") when the server's list lacks ``model``.

    A rejected token or an exhausted quota raises too: no record could be answered.
    """
    try:
        listed = client.list_models(retry=RetryPolicy(max_retries=1, rate_limit_budget=5.0))
        served = [str(m.get("id")) for m in listed if m.get("id")]
    except (AnyFastAuthError, AnyFastQuotaExhaustedError) as exc:
        exc.message = f"{exc.message}; nothing was sent (found by the free GET /v1/models before the first record)"
        raise
    except (AnyFastError, ValueError) as exc:
        log.warning("Could not check the model against %s's model list (%s); sending anyway", client.source, exc)
        return
    if not served or model in served:
        return
    close = difflib.get_close_matches(model, served, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(m) for m in close)}? " if close else ""
    raise AnyFastModelUnavailableError(
        f"{client.source} does not serve model {model!r}: {hint}The models this token may use: "
        f"{', '.join(sorted(served))}. Nothing was sent (checked with the free GET /v1/models).",
        code="model_not_found",
    )
