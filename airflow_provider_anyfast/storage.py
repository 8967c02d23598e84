"""Storage URIs given to an operator, turned into paths whose filesystem is known to work.

Airflow resolves a path's filesystem lazily, so a scheme nothing is installed for (``gs://``
without the Google provider, a typo like ``s4://``) would otherwise fail at the first
write, deep in the run, as "No filesystem registered for scheme gs". Resolving it up
front fails before anything is paid for, and the error names the operator argument and
the package that provides the scheme.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_anyfast.compat import ObjectStoragePath, to_storage_path
from airflow_provider_anyfast.exceptions import AnyFastConfigError

#: Which distribution registers each common scheme with Airflow's object storage.
SCHEME_PACKAGES: dict[str, str] = {
    **dict.fromkeys(("s3", "s3a", "s3n"), "apache-airflow-providers-amazon[s3fs]"),
    **dict.fromkeys(("gs", "gcs"), "apache-airflow-providers-google (gcsfs)"),
    **dict.fromkeys(("abfs", "abfss", "az", "adl"), "apache-airflow-providers-microsoft-azure (adlfs)"),
    "sftp": "apache-airflow-providers-sftp",
}


def storage_path(value: Any, conn_id: str | None, *, field: str) -> ObjectStoragePath:
    """``value`` (a URI or a path) as an ObjectStoragePath whose scheme has a filesystem installed."""
    try:
        path = to_storage_path(value, conn_id)
        path.fs  # noqa: B018 - resolves the scheme's filesystem now rather than at the first write
    except (ImportError, ValueError) as exc:
        text = str(value)
        scheme = text.split("://", 1)[0].lower() if "://" in text else "file"
        package = SCHEME_PACKAGES.get(scheme)
        fix = (
            f"install {package}" if package else
            f"check the URI, or install the Airflow provider that registers a filesystem for '{scheme}://'"
        )  # fmt: skip
        raise AnyFastConfigError(
            f"{field}={text!r}: no filesystem is available for the '{scheme}' scheme ({exc}); {fix}"
        ) from None
    return path
