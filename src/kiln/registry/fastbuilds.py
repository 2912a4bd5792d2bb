"""The queries of a warm ``kiln env build`` on the embedded SQLite registry, through the
standard library: the version to build, its newest stored lock, the first lock when the build
resolves one, whether that lock was built before, and the record of the build.

Why: a build from a stored lock with warm package caches takes about as long as uv's own
``uv venv && uv pip sync``, and importing SQLAlchemy alone added a third of that. These are
``catalog.get``, ``lock_queries.get_lock``, ``insert_lock``, ``list_builds`` (as ``builds._built_before`` reads
it) and ``record_build``, with the names of ``layout.py``; tests/builds/test_fast_build.py runs
both paths on the same registry and compares what they read and write.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any, NamedTuple

from kiln.registry.layout import BUILDS, COLUMNS, ENVIRONMENT_VERSIONS, LOCKS, columns
from kiln.registry.lockrow import LockRow

# As lock_queries.list_builds: build._built_before looks at this many attempts, newest first.
BUILDS_LOOKED_AT = 100
# How SQLAlchemy's DateTime stores a value on SQLite (its zone dropped: Kiln writes UTC).
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


class StoredVersion(NamedTuple):
    name: str
    version: str
    build_hash: str
    definition_digest: str
    definition: str  # the stored JSON


def find_version(
    connection: sqlite3.Connection, *, name: str, version: str | None
) -> StoredVersion | None:
    """``version`` of ``name``, or its newest unarchived one (as ``catalog.get``)."""
    fields = columns(
        ENVIRONMENT_VERSIONS, "name", "version", "build_hash", "definition_digest", "definition"
    )
    select = f"SELECT {fields} FROM {ENVIRONMENT_VERSIONS} WHERE name = ?"
    if version is None:
        row = connection.execute(
            f"{select} AND archived = 0 ORDER BY id DESC LIMIT 1", (name,)
        ).fetchone()
    else:
        row = connection.execute(f"{select} AND version = ?", (name, version)).fetchone()
    return None if row is None else StoredVersion(*row)


def newest_lock(
    connection: sqlite3.Connection, *, build_hash: str, platform: str
) -> LockRow | None:
    """The newest generation (as ``lock_queries.get_lock`` without one)."""
    fields = columns(LOCKS, *(name for name in COLUMNS[LOCKS] if name != "id"))
    row = connection.execute(
        f"SELECT {fields} FROM {LOCKS} WHERE build_hash = ? AND platform = ? "
        "ORDER BY generation DESC LIMIT 1",
        (build_hash, platform),
    ).fetchone()
    if row is None:
        return None
    build, platform, generation, digest, fmt, text, packages, resolver, created = row
    moment = dt.datetime.fromisoformat(created)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    return LockRow(
        build, platform, generation, digest, fmt, text, json.loads(packages), resolver, moment
    )


def built_before(
    connection: sqlite3.Connection,
    *,
    build_hash: str,
    lock_digest: str,
    builder: str,
    platform: str,
) -> bool:
    """Whether one of the newest attempts of ``build_hash`` built this lock by this builder for
    this platform, and succeeded."""
    fields = columns(BUILDS, "lock_digest", "builder", "platform", "status")
    rows = connection.execute(
        f"SELECT {fields} FROM {BUILDS} WHERE build_hash = ? ORDER BY id DESC LIMIT ?",
        (build_hash, BUILDS_LOOKED_AT),
    ).fetchall()
    wanted = (lock_digest, builder, platform, "succeeded")
    return any(tuple(row) == wanted for row in rows)


def record_build(connection: sqlite3.Connection, **values: Any) -> None:
    """Insert one attempt (``started_at`` a datetime in UTC, as the full path passes it)."""
    started: dt.datetime = values["started_at"]
    row = {**values, "started_at": started.astimezone(dt.timezone.utc).strftime(SQLITE_DATETIME)}
    names = list(row)
    marks = ", ".join(f":{n}" for n in names)
    connection.execute(f"INSERT INTO {BUILDS} ({columns(BUILDS, *names)}) VALUES ({marks})", row)


def insert_lock(connection: sqlite3.Connection, **values: Any) -> bool:
    """Store a lock generation (as ``lock_queries.insert_lock``: ``packages`` a list, the time
    now in UTC); False when that generation exists already (another process stored it)."""
    now = dt.datetime.now(dt.timezone.utc).strftime(SQLITE_DATETIME)
    row = {**values, "packages": json.dumps(values["packages"]), "created_at": now}
    names = list(row)
    marks = ", ".join(f":{n}" for n in names)
    try:
        connection.execute(f"INSERT INTO {LOCKS} ({columns(LOCKS, *names)}) VALUES ({marks})", row)
    except sqlite3.IntegrityError:
        return False
    return True
