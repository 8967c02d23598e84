"""Per-record prompts: a Jinja template rendered with ``record`` (and run-level values).

The fixed parts (JSON instructions with the schema, then the system prompt) come first
and the record last, so consecutive requests share the longest prefix the provider can
cache. A template that names a field a record lacks fails for that record with the
field's name, never with an empty string in the prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from airflow_provider_anyfast.core.jsonmode import OutputSchema, json_messages

_MISSING = re.compile(r"has no attribute '([^']+)'|'([^']+)' is undefined|no element '?([^')]+)'?")
CHARS_PER_TOKEN = 4


def _tojson(value: Any, indent: int | None = None) -> str:
    """Plain JSON (Jinja's own ``tojson`` HTML-escapes ``<>&'``, which only confuses a model)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=indent, default=str)


class TemplateFieldError(ValueError):
    """A record lacks a field the prompt template refers to."""


class PromptTemplate:
    """Renders the messages for one record; compiled once per run."""

    def __init__(
        self,
        prompt: str,
        *,
        system_prompt: str | None = None,
        schema: OutputSchema | None = None,
        json_mode: bool = True,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("'prompt' must be a non-empty Jinja template string, e.g. 'Classify: {{ record.text }}'")
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        env.filters["tojson"] = _tojson
        try:
            self._template = env.from_string(prompt)
            self._names = jinja2.meta.find_undeclared_variables(env.parse(prompt))
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"'prompt' is not a valid Jinja template: {exc.message} (line {exc.lineno})") from None
        self.source = prompt
        self.context = dict(context or {})
        head: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}] if system_prompt else []
        self._head = json_messages(head, schema) if json_mode else head

    def fingerprint_parts(self) -> list[Any]:
        """What shapes every request besides the record, for the resume fingerprint.

        The template, the fixed messages (system prompt, schema), and only the run values the
        template uses: a new run_id or ts must not stop a rerun from resuming.
        """
        used = {key: value for key, value in self.context.items() if key in self._names}
        return [self.source, self._head, used]

    def render(self, record: Any) -> str:
        """The user message for ``record``; TemplateFieldError names a missing field."""
        try:
            return self._template.render(self.context, record=record)
        except jinja2.UndefinedError as exc:
            match = _MISSING.search(str(exc))
            name = next((g for g in match.groups() if g), None) if match else None
            what = f"field {name!r}" if name else f"a value ({exc})"
            raise TemplateFieldError(f"the prompt template refers to {what}, which the record does not have") from None

    def messages(self, record: Any) -> list[dict[str, Any]]:
        """System parts first (shared by every record), the record's own text last."""
        return [*self._head, {"role": "user", "content": self.render(record)}]

    @staticmethod
    def estimate_tokens(messages: list[dict[str, Any]]) -> int:
        """A cheap, deliberately high-ish estimate (4 characters a token) for limits and size checks."""
        return sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN + 4 * len(messages)
