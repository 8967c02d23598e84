"""The reference docs match the code: every parameter documented, nothing documented that is gone.

Each method or class has a section whose heading names it in backticks; its parameter table
(rows starting with ``| `name` |``) must list exactly the parameters ``inspect.signature`` finds.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.core.extras import EXTRAS
from airflow_provider_anyfast.core.records.rows import USAGE_KEYS, ResultRow, RowStatus
from airflow_provider_anyfast.core.records.store import _MANIFEST_KEYS
from airflow_provider_anyfast.core.settings import ConnectionSettings
from airflow_provider_anyfast.decorators.anyfast import anyfast_task
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.operators.anyfast import AnyFastChatOperator, AnyFastRecordsOperator

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = ("connection", "hooks", "operators", "recipes", "output-rows", "scaling", "migration", "architecture")
HEADING = re.compile(r"^#+ .*?`([^`]+)`", re.MULTILINE)
TABLE_NAME = re.compile(r"^\| `([^`]+)`", re.MULTILINE)


def sections(page: str) -> dict[str, str]:
    """Heading name (the first backticked word of the heading) -> the text up to the next heading."""
    text = (DOCS / f"{page}.md").read_text()
    found: dict[str, str] = {}
    marks = list(re.finditer(r"^#+ .*$", text, re.MULTILINE))
    for mark, nxt in zip(marks, [*marks[1:], None], strict=True):
        named = HEADING.match(mark.group(0))
        if named:
            found[named.group(1)] = text[mark.end() : nxt.start() if nxt else len(text)]
    return found


def documented(section: str) -> set[str]:
    return set(TABLE_NAME.findall(section))


def parameters(fn: Callable[..., Any]) -> set[str]:
    names = set()
    for p in inspect.signature(fn).parameters.values():
        if p.name in ("self", "cls"):
            continue
        prefix = {p.VAR_KEYWORD: "**", p.VAR_POSITIONAL: "*"}.get(p.kind, "")
        names.add(prefix + p.name)
    return names


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """Methods the class itself defines (not BaseHook's), properties excluded."""
    found = {}
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, classmethod | staticmethod):
            found[name] = value.__func__
        elif inspect.isfunction(value):
            found[name] = value
    return found


def hook_targets() -> list[tuple[str, Callable[..., Any]]]:
    return [("AnyFastHook", AnyFastHook.__init__), *sorted(public_methods(AnyFastHook).items())]


OPERATOR_TARGETS = [
    ("AnyFastChatOperator", AnyFastChatOperator.__init__),
    ("AnyFastRecordsOperator", AnyFastRecordsOperator.__init__),
    ("@task.anyfast", anyfast_task),
]


@pytest.mark.parametrize(("name", "fn"), hook_targets(), ids=lambda v: v if isinstance(v, str) else "")
def test_hooks_md_documents_every_public_method_parameter(name: str, fn: Callable[..., Any]) -> None:
    page = sections("hooks")
    assert name in page, f"docs/hooks.md has no section headed `{name}`"
    assert documented(page[name]) == parameters(fn), f"docs/hooks.md, `{name}`: the table must list {parameters(fn)}"


@pytest.mark.parametrize(("name", "fn"), OPERATOR_TARGETS, ids=[n for n, _ in OPERATOR_TARGETS])
def test_operators_md_documents_every_parameter(name: str, fn: Callable[..., Any]) -> None:
    page = sections("operators")
    assert name in page, f"docs/operators.md has no section headed `{name}`"
    missing, stale = parameters(fn) - documented(page[name]), documented(page[name]) - parameters(fn)
    assert not missing and not stale, f"docs/operators.md, `{name}`: undocumented {missing}, no longer in code {stale}"


def test_connection_md_documents_every_extra_and_field() -> None:
    text = (DOCS / "connection.md").read_text()
    assert set(EXTRAS) <= documented(text)
    assert set(ConnectionSettings.model_fields) == set(EXTRAS), "the settings model reads the one table of extras"
    assert {"password", "host", "schema", "port", "login"} <= documented(text)


def test_output_rows_md_documents_the_row_and_the_manifest() -> None:
    text = (DOCS / "output-rows.md").read_text()
    tables = documented(text)
    assert set(ResultRow(id=0, status=RowStatus.SUCCESS).to_dict()) <= tables  # every row key
    assert {s.value for s in RowStatus} <= tables  # every status
    assert set(_MANIFEST_KEYS) <= tables  # every manifest key
    inline = set(re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL)))
    assert set(USAGE_KEYS) <= inline


def test_every_page_exists_and_its_relative_links_resolve() -> None:
    for page in PAGES:
        path = DOCS / f"{page}.md"
        assert path.exists(), f"missing {path}"
        for target in re.findall(r"\]\((?!https?://|#)([^)#\s]+)", path.read_text()):
            assert (path.parent / target).resolve().exists(), f"{path.name} links to missing {target}"


def test_architecture_md_places_every_module() -> None:
    """The newcomers' map names every module of the package, and none that is gone."""
    text = (DOCS / "architecture.md").read_text()
    package = ROOT / "airflow_provider_anyfast"
    modules = {p.relative_to(package).as_posix() for p in package.rglob("*.py") if p.name != "__init__.py"}
    named = {m for m in re.findall(r"`((?:\w+/)*\w+\.py)`", text) if not m.startswith(("tests/", "benchmarks/"))}
    assert modules - named == set(), "docs/architecture.md does not place these modules"
    assert named - modules - {"__init__.py"} == set(), "docs/architecture.md names modules that do not exist"
