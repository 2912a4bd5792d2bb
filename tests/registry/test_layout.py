"""The standard-library paths name tables and columns through layout.py: it must match the
SQLAlchemy tables exactly, so the fast SQL and the full path cannot drift apart."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import Boolean

from kiln.registry import layout, schema
from kiln.runs.store import RunRecord


@pytest.mark.parametrize("table", sorted(layout.COLUMNS))
def test_layout_names_the_columns_of_the_declared_table(table: str) -> None:
    declared = schema.metadata.tables[table]
    assert layout.COLUMNS[table] == tuple(declared.c.keys())
    booleans = tuple(c.name for c in declared.c if isinstance(c.type, Boolean))
    assert layout.BOOLEANS.get(table, ()) == booleans


def test_a_run_record_has_exactly_the_columns_of_a_run() -> None:
    assert {f.name for f in dataclasses.fields(RunRecord)} == set(layout.COLUMNS[layout.RUNS])


def test_an_unknown_column_never_reaches_the_sql() -> None:
    assert layout.columns(layout.RUN_METRICS, "name", "value") == "name, value"
    with pytest.raises(KeyError, match="runs has no column status; DROP"):
        layout.columns(layout.RUNS, "status; DROP")
