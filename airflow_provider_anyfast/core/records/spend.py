"""A run's spend at a glance: a few lines of markdown from its summary (records, tokens, cost, time).

The summary dict (XCom / manifest) has it all but reads as JSON; this is what a person wants
to see in the UI next to the run: the asset event's ``extra["summary"]`` and the task log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def _seconds(summary: Mapping[str, Any]) -> float | None:
    try:
        started = datetime.fromisoformat(str(summary["started_at"]))
        ended = datetime.fromisoformat(str(summary["ended_at"]))
    except (KeyError, ValueError):
        return None
    return (ended - started).total_seconds()


def markdown_summary(summary: Mapping[str, Any]) -> str:
    """Markdown for one records run; only keys the summary has are shown."""
    counts = summary.get("counts") or {}
    usage = summary.get("usage") or {}
    statuses = ", ".join(f"{status} {n}" for status, n in counts.items() if n) or "none"
    lines = [
        f"**AnyFast run** · model `{summary.get('model', '?')}`",
        "",
        f"- records: {summary.get('records', 0)} ({statuses})",
        f"- requests: {summary.get('requests', 0)}",
        f"- tokens: {usage.get('total_tokens', 0)} (prompt {usage.get('prompt_tokens', 0)}, completion "
        f"{usage.get('completion_tokens', 0)}, reasoning {usage.get('reasoning_tokens', 0)}, cached "
        f"{usage.get('cached_tokens', 0)})",
    ]
    if summary.get("estimated_cost") is not None:
        lines.append(f"- estimated cost: {float(summary['estimated_cost']):.4f}")
    seconds = _seconds(summary)
    if seconds is not None:
        lines.append(f"- time: {seconds:.1f} s")
    if summary.get("output") or summary.get("path"):
        lines.append(f"- output: `{summary.get('path') or summary.get('output')}`")
    return "\n".join(lines)
