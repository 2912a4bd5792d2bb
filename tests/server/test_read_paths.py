"""The server's read paths answer what the CLI's do, with fewer reads: a page of versions cut by
the database (``envlist.list_page``), one version in one connection (``envdetail.shown_named``),
and JSON serialized once (``answers.json_answer``), byte for byte what the response model gives.
On SQLite (the fast path) and PostgreSQL (the catalog)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import TypeAdapter

from kiln import catalog
from kiln.envdetail import shown, shown_named
from kiln.environment.definition import EnvironmentDefinition
from kiln.envlist import list_page, list_versions
from kiln.errors import NotFound
from kiln.schemas.environments import EnvironmentDetail, ListedVersion
from kiln.server.answers import json_answer
from kiln.workspace import Workspace


def _register(ws: Workspace, name: str, package: str, **extra: object) -> None:
    data = {"name": name, "python": {"pip": {"packages": [package]}}, **extra}
    catalog.register(ws, EnvironmentDefinition.model_validate(data))


@pytest.fixture
def filled(workspace: Workspace) -> Workspace:
    for number in range(7):
        tags = {"team": "a" if number % 2 else "b", "ünïcode": '✓ "quoted" \\ /'}
        _register(
            workspace, f"env-{number}", "numpy==1.0", tags=tags, description=f"número {number}"
        )
        _register(workspace, f"env-{number}", "numpy==2.0")
    _register(workspace, "anonymous", "scipy==1.0")
    _register(workspace, "same", "numpy==1.0")  # shares env-N:1's build
    catalog.set_archived(workspace, "env-3", "2", archived=True)
    catalog.set_archived(workspace, "env-5", None, archived=True)
    return workspace


FILTERS: list[dict[str, Any]] = [
    {},
    {"all_versions": True},
    {"include_archived": True},
    {"all_versions": True, "include_archived": True, "include_anonymous": True},
    {"include_curated": False},
    {"name_contains": "ENV-"},
    {"tags": {"team": "a"}, "include_curated": False},
    {"name_contains": "py311"},  # curated only
]


@pytest.mark.parametrize("filters", FILTERS)
def test_a_page_is_the_slice_of_the_whole_list(filled: Workspace, filters: dict[str, Any]) -> None:
    whole = list_versions(filled, **filters)
    assert whole, "the filters should match something"
    for limit, offset in itertools.product(
        (1, 3, 1000), (0, 1, 2, 5, len(whole) - 1, len(whole) + 4)
    ):
        total, rows = list_page(filled, limit=limit, offset=offset, **filters)
        assert total == len(whole)
        assert rows == whole[offset : offset + limit], (limit, offset)
        assert repr(rows) == repr(whole[offset : offset + limit])  # types and key order too


def test_one_version_reads_as_the_catalog_shows_it(filled: Workspace) -> None:
    for name, version in [
        ("env-1", "1"),
        ("env-1", None),
        ("env-3", None),
        ("env-3", "2"),
        ("same", "1"),
    ]:
        quick = shown_named(filled, name, version)
        assert quick == shown(filled, catalog.get(filled, name, version))
    assert "env-0:1" in shown_named(filled, "same", "1").same_build_as
    curated_name = list_versions(filled)[0]["name"]
    assert shown_named(filled, curated_name, None).summary["curated"] is True
    for name, version in [("env-1", "9"), ("nothing", None), ("env-5", None), ("env-1", "latest")]:
        with pytest.raises(NotFound):
            shown_named(filled, name, version)


def test_answers_are_the_bytes_the_response_model_would_give(filled: Workspace) -> None:
    listed = TypeAdapter(list[ListedVersion])
    _, rows = list_page(filled, limit=1000, all_versions=True, include_archived=True)
    expected = listed.dump_json(listed.validate_python(rows), exclude_unset=True)
    assert json_answer(rows).body == expected
    found = shown_named(filled, "env-1", "1")
    detail = {**found.summary, "same_build_as": found.same_build_as, "definition": found.definition}
    model = TypeAdapter(EnvironmentDetail)
    assert json_answer(detail).body == model.dump_json(
        model.validate_python(detail), exclude_unset=True
    )
