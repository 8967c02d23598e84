"""Extras a connection holds that no setting reads: most likely typos (``modle``, ``max_retires``).

At run time they only warn (the task still runs on the defaults); the connection test
fails on them, since a person is there to fix the form.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from airflow_provider_anyfast.core.settings import EXTRA_PREFIX, ConnectionSettings


def unknown_extras(extras: Mapping[str, Any]) -> list[str]:
    """Each unknown extra with the known name it most likely means, e.g. ``'modle' (did you mean 'model'?)``."""
    known = sorted(ConnectionSettings.model_fields)
    found = []
    for key, value in extras.items():
        name = key.removeprefix(EXTRA_PREFIX)
        if name in known or value is None or value == "":
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        found.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return sorted(found)
