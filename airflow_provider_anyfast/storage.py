"""Storage URIs given to an operator, turned into paths whose filesystem is known to work.

Airflow resolves a path's filesystem lazily, so a scheme nothing is installed for (``gs://``
without the Google provider, a typo like ``s4://``) would otherwise fail at the first
write, deep in the run, as "No filesystem registered for scheme gs". Resolving it up
front fails before anything is paid for, and the error names the operator argument and
the package that provides the scheme.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_anyfast.compat import ObjectStoragePath, to_storage_path
from airflow_provider_anyfast.core.attachments import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_REQUEST_BYTES,
    AttachmentLoader,
)
from airflow_provider_anyfast.exceptions import AnyFastConfigError

#: Which distribution registers each common scheme with Airflow's object storage.
SCHEME_PACKAGES: dict[str, str] = {
    **dict.fromkeys(("s3", "s3a", "s3n"), "apache-airflow-providers-amazon[s3fs]"),
    **dict.fromkeys(("gs", "gcs"), "apache-airflow-providers-google (gcsfs)"),
    **dict.fromkeys(("abfs", "abfss", "az", "adl"), "apache-airflow-providers-microsoft-azure (adlfs)"),
    "sftp": "apache-airflow-providers-sftp",
}


log = logging.getLogger(__name__)
LOCAL_SCHEMES = ("file", "local", "memory")


def storage_path(value: Any, conn_id: str | None, *, field: str) -> ObjectStoragePath:
    """``value`` (a URI or a path) as an ObjectStoragePath whose scheme has a filesystem installed.

    A remote URI given as a string without ``storage_conn_id`` works only on the default
    credentials of the machine (for s3, boto's chain and AWS's own endpoint): say so, since
    the failure it leads to (no credentials, access denied) does not name the setting.
    """
    text = str(value)
    scheme = text.split("://", 1)[0].lower() if "://" in text else "file"
    if isinstance(value, str) and conn_id is None and scheme not in LOCAL_SCHEMES:
        log.warning(
            "%s=%r has no storage_conn_id: Airflow reaches %s:// with the default credentials of this machine "
            "(no connection, no custom endpoint). Set storage_conn_id to the connection of that storage "
            "(e.g. storage_conn_id='aws_default') if access fails.",
            field, text, scheme,
        )  # fmt: skip
    try:
        path = to_storage_path(value, conn_id)
        path.fs  # noqa: B018 - resolves the scheme's filesystem now rather than at the first write
    except (ImportError, ValueError) as exc:
        package = SCHEME_PACKAGES.get(scheme)
        fix = (
            f"install {package}" if package else
            f"check the URI, or install the Airflow provider that registers a filesystem for '{scheme}://'"
        )  # fmt: skip
        raise AnyFastConfigError(
            f"{field}={text!r}: no filesystem is available for the '{scheme}' scheme ({exc}); {fix}"
        ) from None
    return path


def attachment_loader(
    conn_id: str | None,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    presign_seconds: int | None = None,
) -> AttachmentLoader:
    """A loader that reads attachment references as ObjectStoragePaths with ``conn_id``."""

    def open_ref(ref: str) -> ObjectStoragePath:
        return storage_path(ref, conn_id, field="attachments")

    def presign(ref: str) -> tuple[str, str]:
        path = open_ref(ref)
        url = path.fs.sign(path.path, expiration=presign_seconds)
        return str(url), str(path.fs.info(path.path).get("ETag") or "")

    if presign_seconds is not None and (isinstance(presign_seconds, bool) or presign_seconds < 1):
        raise ValueError(f"presign_attachments must be a positive number of seconds, got {presign_seconds!r}")
    return AttachmentLoader(
        open_ref, max_file_bytes=max_file_bytes, max_request_bytes=max_request_bytes,
        presign=presign if presign_seconds else None,
    )  # fmt: skip
