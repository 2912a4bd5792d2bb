"""Keyword-only queries for named compute targets (SQLAlchemy Core); ``fastruns.py`` has the
same ones for the embedded registry through the standard library."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select

from kiln.registry.schema import compute_targets


def put_target(
    connection: Connection,
    *,
    name: str,
    kind: str,
    address: str,
    created_at: float,
    created_by: str | None,
) -> None:
    """Add the target, or replace the one of that name."""
    connection.execute(delete(compute_targets).where(compute_targets.c.name == name))
    values = {"kind": kind, "address": address, "created_at": created_at, "created_by": created_by}
    connection.execute(insert(compute_targets).values(name=name, **values))


def get_target(connection: Connection, *, name: str) -> dict[str, Any] | None:
    row = connection.execute(select(compute_targets).where(compute_targets.c.name == name)).first()
    return None if row is None else dict(row._mapping)


def list_targets(connection: Connection) -> list[dict[str, Any]]:
    query = select(compute_targets).order_by(compute_targets.c.name)
    return [dict(row) for row in connection.execute(query).mappings()]


def delete_target(connection: Connection, *, name: str) -> bool:
    statement = delete(compute_targets).where(compute_targets.c.name == name)
    return connection.execute(statement).rowcount > 0
