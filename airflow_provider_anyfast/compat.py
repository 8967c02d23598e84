"""The one place where imports differ between Airflow 2.11 and Airflow 3.x.

Everything else in the package imports Airflow names from here, so supporting another
Airflow line means editing this file only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION

AIRFLOW_V3 = int(AIRFLOW_VERSION.split(".", 1)[0]) >= 3

if TYPE_CHECKING or AIRFLOW_V3:
    from airflow.sdk import Asset as Asset
    from airflow.sdk import BaseHook, BaseOperator, ObjectStoragePath
    from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, determine_kwargs, task_decorator_factory
    from airflow.sdk.definitions.context import Context, context_merge
    from airflow.sdk.exceptions import AirflowFailException
else:  # pragma: no cover - exercised by the Airflow 2.11 CI leg
    from airflow.datasets import Dataset as Asset
    from airflow.decorators.base import DecoratedOperator, TaskDecorator, task_decorator_factory
    from airflow.exceptions import AirflowFailException
    from airflow.hooks.base import BaseHook
    from airflow.io.path import ObjectStoragePath
    from airflow.models.baseoperator import BaseOperator
    from airflow.utils.context import Context, context_merge
    from airflow.utils.operator_helpers import determine_kwargs


def mask_secret(secret: str | None) -> None:
    """Register a secret with Airflow's log masker (a no-op for an empty secret)."""
    if not secret:
        return
    try:
        from airflow.sdk.log import mask_secret as _mask
    except ImportError:  # pragma: no cover - Airflow 2.11
        from airflow.utils.log.secrets_masker import mask_secret as _mask  # type: ignore[no-redef]
    _mask(secret)


def make_asset(uri: str) -> Asset:
    """An Asset (a Dataset on 2.11) named by its URI, so the same URI always means the same asset."""
    return Asset(uri) if not AIRFLOW_V3 else Asset(name=uri, uri=uri)


def to_storage_path(value: Any, conn_id: str | None = None) -> ObjectStoragePath:
    """Turn a URI string (or an ObjectStoragePath) into an ObjectStoragePath.

    Build paths inside the task, never at DAG import time: Airflow 3.3 caches the
    filesystem when the path is created.
    """
    if isinstance(value, ObjectStoragePath):
        return value
    text = str(value)
    if "://" not in text:
        text = "file://" + text
    if text.startswith("file://"):
        conn_id = None  # a local path needs no connection (and would print as file://conn@/...)
    return ObjectStoragePath(text, conn_id=conn_id) if conn_id else ObjectStoragePath(text)


def provider_setting(key: str) -> str | None:
    """A value of the ``[anyfast]`` configuration section (``AIRFLOW__ANYFAST__<KEY>``), or None when unset."""
    if AIRFLOW_V3:
        from airflow.sdk.configuration import conf
    else:
        from airflow.configuration import conf
    value = conf.get("anyfast", key, fallback=None)
    return value or None


def get_stats() -> Any:
    """Airflow's ``Stats`` (StatsD, Datadog or OpenTelemetry, as the deployment configured it).

    3.3 keeps it in ``airflow.sdk.observability.stats``; 2.11 (and 3.0) in ``airflow.stats``.
    """
    try:
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # pragma: no cover - Airflow 2.11
        from airflow.stats import Stats
    return Stats


def display_uri(path: ObjectStoragePath) -> str:
    """``s3://bucket/key`` for a path, without the ``conn_id@`` part Airflow puts in ``str(path)``."""
    protocol = path.protocol if isinstance(path.protocol, str) else path.protocol[0]
    return f"{protocol}://{path.path}"


__all__ = [
    "AIRFLOW_V3",
    "AIRFLOW_VERSION",
    "AirflowFailException",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "Context",
    "DecoratedOperator",
    "ObjectStoragePath",
    "TaskDecorator",
    "context_merge",
    "determine_kwargs",
    "display_uri",
    "get_stats",
    "make_asset",
    "mask_secret",
    "provider_setting",
    "task_decorator_factory",
    "to_storage_path",
]
