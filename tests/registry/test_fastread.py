"""The SQLite fast path for `kiln env list` must return exactly what the SQLAlchemy path does."""

from __future__ import annotations

import sqlite3

import pytest

from kiln import catalog, curated
from kiln.environment.definition import EnvironmentDefinition
from kiln.registry.fastread import list_summaries
from kiln.workspace import Workspace


def _register(ws: Workspace, name: str, package: str, **extra: object) -> None:
    data = {"name": name, "python": {"pip": {"packages": [package]}}, **extra}
    catalog.register(ws, EnvironmentDefinition.model_validate(data))


@pytest.mark.parametrize("all_versions", [False, True])
@pytest.mark.parametrize("include_archived", [False, True])
def test_fast_path_equals_the_sqlalchemy_path(
    sqlite_workspace: Workspace, all_versions: bool, include_archived: bool
) -> None:
    ws = sqlite_workspace
    _register(ws, "b", "numpy==1.0", tags={"team": "x"}, description="first")
    _register(ws, "b", "numpy==2.0")
    _register(ws, "a", "pandas==1.0")
    _register(ws, "c", "scipy==1.0")
    catalog.set_archived(ws, "b", "2", archived=True)
    catalog.set_archived(ws, "c", None, archived=True)
    slow = [
        r.summary()
        for r in catalog.list_records(
            ws, all_versions=all_versions, include_archived=include_archived, include_curated=False
        )
    ]
    fast = list_summaries(
        ws.registry_file, all_versions=all_versions, include_archived=include_archived
    )
    assert fast == slow
    assert repr(fast) == repr(slow)  # same types too (True is not 1) and the same key order
    assert (
        len(fast)
        == {(False, False): 2, (False, True): 3, (True, False): 2, (True, True): 4}[
            (all_versions, include_archived)
        ]
    )


def test_fast_path_steps_aside_for_an_unmigrated_database(sqlite_workspace: Workspace) -> None:
    with sqlite3.connect(sqlite_workspace.registry_file) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'older'")
    assert (
        list_summaries(sqlite_workspace.registry_file, all_versions=False, include_archived=False)
        is None
    )
    assert (
        list_summaries(
            sqlite_workspace.root / "missing.db", all_versions=False, include_archived=False
        )
        is None
    )


def test_curated_index_is_current() -> None:
    assert curated.indexed_entries() == curated.index_entries(), (
        "src/kiln/curated/index.json is stale: run `python -m kiln.curated`"
    )
    assert curated.indexed_summaries() == curated.summaries()
