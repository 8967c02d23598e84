"""The operators' public home: ``from airflow_provider_anyfast.operators.anyfast import ...``.

Each operator lives in its own module (``chat``, ``records``); this module keeps the
import path the docs, the provider info and users' DAGs name.
"""

from __future__ import annotations

from airflow_provider_anyfast.operators.chat import AnyFastChatOperator, Schema
from airflow_provider_anyfast.operators.records import (
    DEFAULT_MAX_XCOM_BYTES,
    RUN_CONTEXT_KEYS,
    AnyFastRecordsOperator,
)

__all__ = ["DEFAULT_MAX_XCOM_BYTES", "RUN_CONTEXT_KEYS", "AnyFastChatOperator", "AnyFastRecordsOperator", "Schema"]
