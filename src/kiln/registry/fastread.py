"""``kiln env list`` on the embedded SQLite registry without importing SQLAlchemy or pydantic.

Why: on a 2-core machine importing SQLAlchemy alone takes ~0.45 s and pydantic ~0.25 s, more
than the whole command may take. This is the same query as ``queries.list_versions`` (without
filters), written in SQLite's SQL with the names of ``layout.py`` (checked against schema.py);
a test runs both on the same data and compares every field.
Alembic still owns the schema: if the database is not at ``SCHEMA_REVISION`` this returns None
and the caller takes the ordinary path, which migrates.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from kiln.registry.layout import ENVIRONMENT_TAGS, ENVIRONMENT_VERSIONS, columns
from kiln.registry.readonly import open_readonly

_VERSIONS = ENVIRONMENT_VERSIONS
_COLUMNS = columns(
    _VERSIONS,
    "id",
    "name",
    "version",
    "build_hash",
    "definition_digest",
    "description",
    "archived",
    "created_at",
)
_TAGS = f"SELECT {columns(ENVIRONMENT_TAGS)} FROM {ENVIRONMENT_TAGS}"


def _timestamp(text: str) -> str:
    value = dt.datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()


def list_summaries(
    database: Path, *, all_versions: bool, include_archived: bool
) -> list[dict[str, Any]] | None:
    """Version summaries ordered by name then registration, or None if the fast path can't."""
    connection = open_readonly(database)
    if connection is None:
        return None
    try:
        where = "" if include_archived else "WHERE archived = 0"
        if all_versions:
            sql = f"SELECT {_COLUMNS} FROM {_VERSIONS} {where} ORDER BY name, id"
        else:
            sql = (
                f"SELECT {_COLUMNS} FROM {_VERSIONS} WHERE id IN "
                f"(SELECT max(id) FROM {_VERSIONS} {where} GROUP BY name) ORDER BY name, id"
            )
        rows = connection.execute(sql).fetchall()
        tags: dict[int, dict[str, str]] = {}
        for version_id, key, value in connection.execute(_TAGS):
            tags.setdefault(version_id, {})[key] = value
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return [
        {
            "name": name,
            "version": version,
            "description": description,
            "tags": tags.get(row_id, {}),
            "build_hash": build,
            "definition_digest": digest,
            "created_at": _timestamp(created),
            "archived": bool(archived),
            "curated": False,
        }
        for row_id, name, version, build, digest, description, archived, created in rows
    ]
