"""``kiln env list``, ``show`` and an unchanged ``register`` on the embedded SQLite registry
without importing SQLAlchemy or pydantic.

Why: on a 2-core machine importing SQLAlchemy alone takes ~0.45 s and pydantic ~0.25 s, more
than the whole command may take. These are the queries of ``queries.list_versions`` (without
filters), ``get_version`` and ``find_by_digest``, written in SQLite's SQL with the names of
``layout.py`` (checked against schema.py); tests run both on the same data and compare every
field.
Alembic still owns the schema: if the database is not at ``SCHEMA_REVISION`` this returns None
and the caller takes the ordinary path, which migrates.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

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
    "created_by",
)
_TAGS = f"SELECT {columns(ENVIRONMENT_TAGS)} FROM {ENVIRONMENT_TAGS}"
_WITH_DEFINITION = f"{_COLUMNS}, {columns(_VERSIONS, 'definition')}"
_ROW_TAGS = (
    f"SELECT {columns(ENVIRONMENT_TAGS, 'key', 'value')} FROM {ENVIRONMENT_TAGS} "
    "WHERE version_id IN (?)"  # as queries._rows asks: the same order of tags
)
_SAME_BUILD = f"SELECT name, version FROM {_VERSIONS} WHERE build_hash = ? ORDER BY name, id"


def _timestamp(text: str) -> str:
    value = dt.datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()


def list_summaries(
    database: Path, *, all_versions: bool, include_archived: bool
) -> list[dict[str, Any]] | None:
    """Version summaries ordered by name then registration, or None if the fast path can't."""
    found = list_page(database, all_versions=all_versions, include_archived=include_archived)
    return None if found is None else found[1]


def list_page(
    database: Path,
    *,
    all_versions: bool,
    include_archived: bool,
    without_name: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]] | None:
    """(how many match, the summaries from ``offset``, at most ``limit``), ordered by name then
    registration; ``without_name`` leaves that name out. None if the fast path can't."""
    connection = open_readonly(database)
    if connection is None:
        return None
    conditions = ([] if include_archived else ["archived = 0"]) + (
        [] if without_name is None else ["name != :without"]
    )
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    matching = (
        f"SELECT id FROM {_VERSIONS} {where}"
        if all_versions
        else f"SELECT max(id) FROM {_VERSIONS} {where} GROUP BY name"
    )
    sql = f"SELECT {_COLUMNS} FROM {_VERSIONS} WHERE id IN ({matching}) ORDER BY name, id"
    values = {"without": without_name, "limit": -1 if limit is None else limit, "skip": offset}
    try:
        with connection:  # one read transaction: the count and the rows agree
            connection.execute("BEGIN")
            total = connection.execute(f"SELECT count(*) FROM ({matching})", values).fetchone()
            rows = connection.execute(f"{sql} LIMIT :limit OFFSET :skip", values).fetchall()
            tags = _tags_of(connection, [row[0] for row in rows])
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return int(total[0]), [_summary(row, tags.get(row[0], {})) for row in rows]


def _tags_of(connection: sqlite3.Connection, ids: list[int]) -> dict[int, dict[str, str]]:
    """The tags of the versions ``ids`` only, in the order ``queries._rows`` reads them."""
    tags: dict[int, dict[str, str]] = {}
    for start in range(0, len(ids), 500):  # under SQLite's limit of bound parameters
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for version_id, key, value in connection.execute(
            f"{_TAGS} WHERE version_id IN ({marks})", chunk
        ):
            tags.setdefault(version_id, {})[key] = value
    return tags


def _summary(row: tuple[Any, ...], tags: dict[str, str]) -> dict[str, Any]:
    """The public ``environment-version`` fields of a row, as ``EnvironmentRecord.summary``."""
    _, name, version, build, digest, description, archived, created, created_by = row[:9]
    return {
        "name": name,
        "version": version,
        "description": description,
        "tags": tags,
        "build_hash": build,
        "definition_digest": digest,
        "created_at": _timestamp(created),
        "created_by": created_by,
        "archived": bool(archived),
        "curated": False,
    }


class FoundVersion(NamedTuple):
    summary: dict[str, Any]
    definition: str  # the stored JSON
    same_build: list[str]  # NAME:VERSION of the other versions with this build hash


def find_version(
    database: Path, *, name: str, version: str | None, definition_digest: str | None = None
) -> FoundVersion | None:
    """A version as ``catalog.get`` finds it (the given one, or the latest unarchived), or with
    ``definition_digest`` as ``register`` finds an unchanged one (the given version if it holds
    that content, or the newest of the name that does). None when there is none, or when the
    fast path cannot answer: the caller takes the full path, which also reports the errors."""
    connection = open_readonly(database)
    if connection is None:
        return None
    try:
        row = connection.execute(*_version_query(name, version, definition_digest)).fetchone()
        if row is None or definition_digest not in (None, row[4]):
            return None
        tags = dict(connection.execute(_ROW_TAGS, (row[0],)).fetchall())
        shared = connection.execute(_SAME_BUILD, (row[3],)).fetchall()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    others = [f"{n}:{v}" for n, v in shared if (n, v) != (row[1], row[2])]
    return FoundVersion(_summary(row, tags), row[9], others)


def same_build(database: Path, build_hash: str) -> list[tuple[str, str]] | None:
    """(name, version) of every version with ``build_hash``, ordered by name then registration."""
    connection = open_readonly(database)
    if connection is None:
        return None
    try:
        return [(n, v) for n, v in connection.execute(_SAME_BUILD, (build_hash,))]
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def _version_query(
    name: str, version: str | None, digest: str | None
) -> tuple[str, tuple[str, ...]]:
    select = f"SELECT {_WITH_DEFINITION} FROM {_VERSIONS} WHERE name = ?"
    if version is not None:
        return f"{select} AND version = ?", (name, version)
    if digest is not None:
        return f"{select} AND definition_digest = ? ORDER BY id DESC LIMIT 1", (name, digest)
    return f"{select} AND archived = 0 ORDER BY id DESC LIMIT 1", (name,)
