"""The queries of ``run_queries.py`` and ``target_queries.py`` for the embedded SQLite registry,
through the standard library.

Why: a warm ``kiln run submit`` records its run before and after the script, and must add
little to starting it; importing SQLAlchemy alone takes longer than that budget on a 2-core
machine (measured in run_database.py). Same names, same keyword arguments, same results as the SQLAlchemy
queries (tests/registry/test_run_queries.py runs both on the same data); table and column
names come from ``layout.py``, which a test checks against ``schema.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from kiln.registry.layout import BOOLEANS, COMPUTE_TARGETS, RUN_METRICS, RUNS, columns


def _dicts(cursor: sqlite3.Cursor, booleans: Collection[str] = ()) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in found:
        row.update({name: bool(row[name]) for name in booleans})
    return found


def _unless(statuses: Collection[str], params: dict[str, Any]) -> str:
    for index, status in enumerate(statuses):
        params[f"unless_{index}"] = status
    marks = ", ".join(f":unless_{i}" for i in range(len(statuses)))
    return f" AND status NOT IN ({marks})" if statuses else ""


def insert_run(connection: sqlite3.Connection, *, row: Mapping[str, Any]) -> None:
    names = list(row)
    marks = ", ".join(f":{n}" for n in names)
    connection.execute(f"INSERT INTO {RUNS} ({columns(RUNS, *names)}) VALUES ({marks})", row)


def get_run(connection: sqlite3.Connection, *, run_id: str) -> dict[str, Any] | None:
    sql = f"SELECT {columns(RUNS)} FROM {RUNS} WHERE id = ?"
    found = _dicts(connection.execute(sql, (run_id,)), BOOLEANS[RUNS])
    return found[0] if found else None


def find_runs(
    connection: sqlite3.Connection,
    *,
    experiment: str | None = None,
    env_name: str | None = None,
    env_version: str | None = None,
    status: str | None = None,
    limit: int,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first; ``offset`` skips that many of the matching runs."""
    wanted = {
        "experiment": experiment,
        "env_name": env_name,
        "env_version": env_version,
        "status": status,
    }
    params: dict[str, Any] = {k: v for k, v in wanted.items() if v is not None}
    where = " AND ".join(f"{k} = :{k}" for k in params)
    sql = (
        f"SELECT {columns(RUNS)} FROM {RUNS}{' WHERE ' + where if where else ''} "
        "ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset"
    )
    params.update(limit=limit, offset=offset)
    return _dicts(connection.execute(sql, params), BOOLEANS[RUNS])


def update_run(
    connection: sqlite3.Connection,
    *,
    run_id: str,
    values: Mapping[str, Any],
    unless_status: Collection[str] = (),
) -> bool:
    columns(RUNS, *values)  # raises for an unknown column
    params: dict[str, Any] = {f"set_{k}": v for k, v in values.items()}
    assignments = ", ".join(f"{k} = :set_{k}" for k in values)
    guard = _unless(unless_status, params)
    sql = f"UPDATE {RUNS} SET {assignments} WHERE id = :run_id{guard}"
    return connection.execute(sql, {**params, "run_id": run_id}).rowcount > 0


def take_over_run(
    connection: sqlite3.Connection,
    *,
    run_id: str,
    old_watcher: str | None,
    new_watcher: str,
    unless_status: Collection[str] = (),
) -> bool:
    params: dict[str, Any] = {"new": new_watcher, "run_id": run_id, "old": old_watcher or ""}
    guard = _unless(unless_status, params)
    sql = f"UPDATE {RUNS} SET watcher = :new WHERE id = :run_id AND watcher = :old{guard}"
    return connection.execute(sql, params).rowcount > 0


def insert_metrics(
    connection: sqlite3.Connection, *, run_id: str, metrics: Sequence[tuple[str, str, float]]
) -> None:
    connection.executemany(
        f"INSERT INTO {RUN_METRICS} ({columns(RUN_METRICS, 'run_id', 'name', 'value', 'logged_at')})"
        " VALUES (?, ?, ?, ?)",
        [(run_id, name, value, logged_at) for name, value, logged_at in metrics],
    )


def list_metrics(connection: sqlite3.Connection, *, run_id: str) -> list[tuple[str, str]]:
    sql = f"SELECT name, value FROM {RUN_METRICS} WHERE run_id = ? ORDER BY id"
    return [(name, value) for name, value in connection.execute(sql, (run_id,))]


def put_target(
    connection: sqlite3.Connection,
    *,
    name: str,
    kind: str,
    address: str,
    created_at: float,
    created_by: str | None,
) -> None:
    connection.execute(f"DELETE FROM {COMPUTE_TARGETS} WHERE name = ?", (name,))
    connection.execute(
        f"INSERT INTO {COMPUTE_TARGETS} ({columns(COMPUTE_TARGETS)}) VALUES (?, ?, ?, ?, ?)",
        (name, kind, address, created_at, created_by),
    )


def list_targets(connection: sqlite3.Connection) -> list[dict[str, Any]]:
    sql = f"SELECT {columns(COMPUTE_TARGETS)} FROM {COMPUTE_TARGETS} ORDER BY name"
    return _dicts(connection.execute(sql))


def delete_target(connection: sqlite3.Connection, *, name: str) -> bool:
    sql = f"DELETE FROM {COMPUTE_TARGETS} WHERE name = ?"
    return connection.execute(sql, (name,)).rowcount > 0
