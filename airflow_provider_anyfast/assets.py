"""The Asset a records run publishes its output as: which URI, and what its event carries.

``AnyFastRecordsOperator`` writes rows to ``output_path``; declaring that folder as an
outlet Asset (a Dataset on Airflow 2.11) lets downstream DAGs be scheduled on fresh
results, and the event's ``extra`` tells them how the run went without reading a file.

``output_path`` is templated, so its final URI is only known at run time, while outlets
are declared when the DAG is parsed. The rule: a plain ``output_path`` (no Jinja) is its
own asset; a templated one declares the fixed folder above its first template
(``s3://b/tickets/{{ run_id }}/`` -> ``s3://b/tickets``), the folder downstream DAGs
watch; ``outlet_asset`` names another. A template with no fixed folder before it
(``{{ params.out }}``) declares none and warns when the DAG is parsed. The event's
``extra["path"]`` always holds the folder this run actually wrote.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any, Literal

from airflow_provider_anyfast.compat import Asset, Context, make_asset

JINJA_MARKERS = ("{{", "{%", "{#")
BULKY_KEYS = ("rows", "files")  # grow with the run: they stay in XCom and the manifest

OutletAsset = Asset | str | Literal[False] | None
log = logging.getLogger(__name__)


class NoOutletAssetWarning(UserWarning):
    """A templated ``output_path`` with no fixed folder: no Asset can be declared at parse time."""


def fixed_prefix(output_path: str) -> str | None:
    """The folder above a templated path's first Jinja marker, or None when there is none.

    ``s3://b/tickets/{{ run_id }}/`` -> ``s3://b/tickets``; ``{{ params.out }}/x`` -> None.
    """
    first = min(output_path.find(m) for m in JINJA_MARKERS if m in output_path)
    head = output_path[:first]
    scheme, _, path = head.rpartition("://") if "://" in head else ("", "", head)
    folder = path[: path.rfind("/")] if "/" in path else ""
    if not folder.strip("/"):
        return None
    return f"{scheme}://{folder}" if scheme else folder


def records_asset(output_path: Any) -> Asset:
    """The Asset for an output folder: a bare path gets ``file://``; no trailing slash.

    Use it in the consuming DAG too (``schedule=[records_asset("s3://bucket/tickets/")]``):
    the same spelling of the folder then always names the same asset.
    """
    uri = str(output_path).strip()
    if "://" not in uri:
        uri = "file://" + uri
    return make_asset(uri.rstrip("/") or uri)


def declared_outlet(output_path: Any, outlet_asset: OutletAsset) -> Asset | None:
    """The outlet to declare at parse time, or None when there is none to declare.

    ``outlet_asset``: an Asset or URI is used as given; ``False`` declares nothing; None
    (the default) declares ``output_path`` itself, or the fixed folder above its template.
    """
    if outlet_asset is False:
        return None
    if isinstance(outlet_asset, str):
        return records_asset(outlet_asset)
    if outlet_asset is not None:
        if not isinstance(outlet_asset, Asset):
            raise TypeError(f"outlet_asset must be an Asset, a URI string, False or None, not {outlet_asset!r}")
        return outlet_asset
    if not isinstance(output_path, str) or not output_path.strip():
        return None
    if not any(m in output_path for m in JINJA_MARKERS):
        return records_asset(output_path)
    prefix = fixed_prefix(output_path)
    if prefix is not None:
        return records_asset(prefix)
    message = (
        f"output_path {output_path!r} is a template with no fixed folder before it, so no Asset is declared "
        "for it. Name the folder downstream DAGs should watch with outlet_asset='s3://bucket/prefix' "
        "(the event's extra['path'] gives each run's folder), or set outlet_asset=False."
    )
    warnings.warn(message, NoOutletAssetWarning, stacklevel=4)
    log.warning("%s", message)
    return None


def event_extra(summary: Mapping[str, Any], location: str) -> dict[str, Any]:
    """The run's summary for the asset event, minus what grows with the run (rows, file list)."""
    extra = {key: value for key, value in summary.items() if key not in BULKY_KEYS}
    extra["path"] = location
    return extra


def publish_event(context: Context, asset: Asset, summary: Mapping[str, Any], location: str) -> None:
    """Attach the run's counts to the outlet event Airflow emits when the task succeeds."""
    context["outlet_events"][asset].extra = event_extra(summary, location)
