"""Test helpers shipped with the provider: an AnyFast-compatible server with fault injection.

Exports are resolved lazily so ``python -m airflow_provider_anyfast.testing.server`` does
not import the server module twice (runpy warns when the package already imported it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_anyfast.testing.server import AnyFastTestServer, Fault, RequestRecord

__all__ = ["AnyFastTestServer", "Fault", "RequestRecord"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("airflow_provider_anyfast.testing.server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
