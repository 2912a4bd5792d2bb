"""Keyword-only queries for registered models (SQLAlchemy Core). Rows are dicts of the stored
values (tags as JSON text, times as epoch seconds)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from kiln.registry.schema import models

_FIELDS = [column for column in models.c if column.name != "id"]
_ATTEMPTS = 10


def insert_next_version(
    connection: Connection,
    *,
    name: str,
    digest: str,
    kind: str,
    file_name: str,
    size: int,
    description: str | None,
    tags: str,
    run_id: str | None,
    env_name: str | None,
    env_version: str | None,
    created_at: float,
    created_by: str | None = None,
    manifest: str | None = None,
) -> int | None:
    """Record the next version of ``name`` and return it; None after too many lost races.

    Two registrations at once: on SQLite ``BEGIN IMMEDIATE`` already serializes them; on
    PostgreSQL the loser's insert fails on (name, version), rolls back to its savepoint and,
    reading committed data, takes the number after the winner's.
    """
    values = {
        "name": name,
        "digest": digest,
        "kind": kind,
        "file_name": file_name,
        "size": size,
        "description": description,
        "tags": tags,
        "run_id": run_id,
        "env_name": env_name,
        "env_version": env_version,
        "created_at": created_at,
        "created_by": created_by,
        "manifest": manifest,
    }
    newest = select(func.max(models.c.version)).where(models.c.name == name)
    for _attempt in range(_ATTEMPTS):
        version = int(connection.execute(newest).scalar() or 0) + 1
        try:
            with connection.begin_nested():
                connection.execute(insert(models).values(**values, version=version))
        except IntegrityError:
            continue
        return version
    return None


def get_model(
    connection: Connection, *, name: str, version: int | None = None
) -> dict[str, Any] | None:
    """A given version, or the newest one."""
    query = select(*_FIELDS).where(models.c.name == name)
    if version is None:
        query = query.order_by(models.c.version.desc()).limit(1)
    else:
        query = query.where(models.c.version == version)
    row = connection.execute(query).mappings().first()
    return None if row is None else dict(row)


def list_models(connection: Connection, *, name: str | None = None) -> list[dict[str, Any]]:
    """Every version (of ``name``, or of every model), by name then version."""
    query = select(*_FIELDS).order_by(models.c.name, models.c.version)
    if name is not None:
        query = query.where(models.c.name == name)
    return [dict(row) for row in connection.execute(query).mappings()]
