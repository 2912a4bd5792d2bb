"""The one opening of the embedded SQLite registry for the standard-library fast paths: read-only
(``kiln env list``, the warm exec path) or writable (the runs of a warm ``kiln run submit``).

Alembic owns the schema: a database that is not at ``SCHEMA_REVISION`` (or is missing, or is
not SQLite at all) gives None, and the caller takes the ordinary path, which migrates.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from kiln.registry.diskfull import full_disk_error, is_disk_full
from kiln.registry.revision import SCHEMA_REVISION


def _open_current(database: Path, mode: str) -> sqlite3.Connection | None:
    if not database.is_file():
        return None
    try:
        connection = sqlite3.connect(
            f"file:{database}?mode={mode}", uri=True, timeout=60, isolation_level=None
        )
    except sqlite3.Error:
        return None
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        row = None
    if row is None or row[0] != SCHEMA_REVISION:
        connection.close()
        return None
    return connection


def open_readonly(database: Path) -> sqlite3.Connection | None:
    """A read-only connection to ``database`` at the current schema revision, or None."""
    return _open_current(database, "ro")


def open_writable(database: Path) -> sqlite3.Connection | None:
    """A connection that may write, configured as the SQLAlchemy engine configures SQLite
    (busy timeout, foreign keys; the engine already put the file in WAL mode), or None.
    Write with ``immediate_transaction``."""
    connection = _open_current(database, "rw")
    if connection is not None:
        connection.execute("PRAGMA busy_timeout=60000")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA synchronous=NORMAL")
    return connection


@contextlib.contextmanager
def immediate_transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` as the engine's writers do: two writers never both read before either
    writes (pysqlite's deferred BEGIN would let them)."""
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # a failed COMMIT may fail this too
                    connection.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        database = _database_file(connection)
        if not is_disk_full(exc, database):
            raise
        raise full_disk_error(database or "the registry") from None


def _database_file(connection: sqlite3.Connection) -> str | None:
    row = connection.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row and row[2] else None
