"""Keyword-only queries for runs and their metrics (SQLAlchemy Core, SQLite or PostgreSQL).

Rows are plain dicts of the stored values (JSON as text, times as epoch seconds): the runs
store turns them into records. ``fastruns.py`` is the same set of queries for the embedded
registry through the standard library; tests/registry/test_run_queries.py runs both on the
same data and compares them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from kiln.registry.schema import run_metrics, runs


def insert_run(connection: Connection, *, row: Mapping[str, Any]) -> None:
    connection.execute(insert(runs).values(**row))


def get_run(connection: Connection, *, run_id: str) -> dict[str, Any] | None:
    row = connection.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
    return None if row is None else dict(row)


def find_runs(
    connection: Connection,
    *,
    experiment: str | None = None,
    env_name: str | None = None,
    env_version: str | None = None,
    status: str | None = None,
    limit: int,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first; ``offset`` skips that many of the matching runs."""
    query = select(runs)
    for column, value in (
        (runs.c.experiment, experiment),
        (runs.c.env_name, env_name),
        (runs.c.env_version, env_version),
        (runs.c.status, status),
    ):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(runs.c.created_at.desc(), runs.c.id.desc())
    query = query.limit(limit).offset(offset)
    return [dict(row) for row in connection.execute(query).mappings()]


def update_run(
    connection: Connection,
    *,
    run_id: str,
    values: Mapping[str, Any],
    unless_status: Collection[str] = (),
) -> bool:
    """Set columns of a run; a run whose status is in ``unless_status`` is left alone (the
    check and the write are one statement, so two writers never both pass it)."""
    statement = update(runs).where(runs.c.id == run_id).values(**values)
    if unless_status:
        statement = statement.where(runs.c.status.not_in(list(unless_status)))
    return connection.execute(statement).rowcount > 0


def take_over_run(
    connection: Connection,
    *,
    run_id: str,
    old_watcher: str | None,
    new_watcher: str,
    unless_status: Collection[str] = (),
) -> bool:
    """Become the run's watcher if ``old_watcher`` still is (a run without one never matches)."""
    statement = (
        update(runs)
        .where(runs.c.id == run_id, runs.c.watcher == (old_watcher or ""))
        .values(watcher=new_watcher)
    )
    if unless_status:
        statement = statement.where(runs.c.status.not_in(list(unless_status)))
    return connection.execute(statement).rowcount > 0


def insert_metrics(
    connection: Connection, *, run_id: str, metrics: Sequence[tuple[str, str, float]]
) -> None:
    """(name, value as JSON text, logged_at) rows, in the order given."""
    if metrics:
        connection.execute(
            insert(run_metrics),
            [
                {"run_id": run_id, "name": name, "value": value, "logged_at": logged_at}
                for name, value, logged_at in metrics
            ],
        )


def list_metrics(connection: Connection, *, run_id: str) -> list[tuple[str, str]]:
    """(name, value as JSON text), in the order they were logged."""
    query = (
        select(run_metrics.c.name, run_metrics.c.value)
        .where(run_metrics.c.run_id == run_id)
        .order_by(run_metrics.c.id)
    )
    return [(row.name, row.value) for row in connection.execute(query)]
