"""The AnyFast run facet OpenLineage events carry. Imported only when the openlineage provider is.

Facets are attrs classes over the OpenLineage client's ``RunFacet``; field names follow the
spec's camelCase. Everything a lineage tool should show about a run of AnyFast lives in one
facet (``anyfast``) so it is found in one place.
"""

from __future__ import annotations

from attrs import define
from openlineage.client.facet_v2 import RunFacet


@define
class AnyFastRunFacet(RunFacet):
    """The model, the prompt's fingerprint and, once known, what the run did and cost."""

    model: str | None = None
    promptFingerprint: str | None = None
    connectionId: str | None = None
    records: dict[str, int] | None = None  # rows by status
    requests: int | None = None
    tokens: dict[str, int] | None = None  # prompt, completion, total, reasoning, cached
    estimatedCost: float | None = None
