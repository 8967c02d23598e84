"""Per-record prompts: a Jinja template rendered with ``record`` and the task's template context.

The template renders only the record's own text (the user message); the fixed parts
(JSON instructions, system prompt) are the request builder's (``core/request.py``).
A template that names a field a record lacks fails for that record with the
field's name, never with an empty string in the prompt; one that fails at run time for
one record (``round`` on a string, a division by zero) fails that record only.
"""

from __future__ import annotations

import json
import re
from collections import ChainMap
from collections.abc import Mapping
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

_MISSING = re.compile(r"has no attribute '([^']+)'|'([^']+)' is undefined|no element '?([^')]+)'?")
CHARS_PER_TOKEN = 4


def _tojson(value: Any, indent: int | None = None) -> str:
    """Plain JSON (Jinja's own ``tojson`` HTML-escapes ``<>&'``, which only confuses a model)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=indent, default=str)


class TemplateRenderError(ValueError):
    """The prompt template cannot be rendered for one record: that record's error row."""


class TemplateFieldError(TemplateRenderError):
    """A record lacks a field the prompt template refers to."""


class PromptTemplate:
    """Renders one record's text; compiled once per run."""

    def __init__(
        self,
        prompt: str,
        *,
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

    def used_context(self) -> dict[str, Any]:
        """Only the run values the template uses, for the resume fingerprint: a new run_id or ts
        must not stop a rerun from resuming."""
        return {key: self.context[key] for key in sorted(self._names) if key != "record" and key in self.context}

    def render(self, record: Any) -> str:
        """The user message for ``record``; TemplateRenderError says why it cannot be made.

        The context is looked up, not copied: Airflow's context has lazy and deprecated
        entries that must only be read when the template names them.
        """
        template = self._template
        names = ChainMap({"record": record}, self.context, template.globals)
        try:
            return template.environment.concat(
                template.root_render_func(template.new_context(names, shared=True))  # type: ignore[arg-type]
            )
        except jinja2.UndefinedError as exc:
            raise TemplateFieldError(self._undefined(str(exc), record)) from None
        except Exception as exc:  # a filter or expression that fails on this record's values
            raise TemplateRenderError(f"the prompt template failed: {type(exc).__name__}: {exc}") from None

    def _undefined(self, error: str, record: Any) -> str:
        match = _MISSING.search(error)
        name = next((g for g in match.groups() if g), None) if match else None
        if name is None:
            return f"the prompt template refers to a value that is undefined ({error})"
        if f"'{name}' is undefined" in error:  # a top-level name, not a field of record
            if isinstance(record, Mapping) and name in record:
                return f"the prompt template uses {name!r}, which is undefined: did you mean record.{name}?"
            return (
                f"the prompt template uses {name!r}, which is undefined: the prompt sees 'record' and the "
                "task's template context (params, run_id, dag_run, macros, var, ...)"
            )
        return f"the prompt template refers to field {name!r}, which the record does not have"

    @staticmethod
    def estimate_tokens(messages: list[dict[str, Any]]) -> int:
        """A cheap, deliberately high-ish estimate (4 characters a token) for limits and size checks."""
        return sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN + 4 * len(messages)
