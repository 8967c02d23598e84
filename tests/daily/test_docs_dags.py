"""Every DAG shown in the docs parses: a snippet that breaks at import (``publish(classify)``
on a mapped task, a name it never defines) fails here, not in a reader's Airflow."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"])
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def dag_snippets() -> list[tuple[str, str]]:
    """(page#n, source) of every Python block that defines a DAG."""
    found = []
    for page in PAGES:
        for n, match in enumerate(BLOCK.finditer(page.read_text()), start=1):
            source = match.group(1)
            if "@dag" in source or "DAG(" in source:
                found.append((f"{page.name}#{n}", source))
    return found


@pytest.fixture
def dag_header() -> str:
    return ""  # a snippet must import what it uses itself


def test_the_docs_have_dag_snippets() -> None:
    pages = {name.split("#")[0] for name, _ in dag_snippets()}
    assert {"README.md", "scaling.md", "operators.md", "recipes.md"} <= pages


@pytest.mark.parametrize(("name", "source"), dag_snippets(), ids=[name for name, _ in dag_snippets()])
def test_every_dag_snippet_in_the_docs_parses(name: str, source: str, load_dag: Any) -> None:
    dag_id = "docs_" + re.sub(r"\W", "_", name)
    bag = load_dag(source, dag_id)
    assert not bag.import_errors, f"{name} does not parse: {next(iter(bag.import_errors.values()))[-1500:]}"
    assert bag.dag_ids, f"{name} defines no DAG (does it call the @dag function?)"
