"""The one read-only opening of the embedded SQLite registry, for the standard-library fast paths.

Alembic owns the schema: a database that is not at ``SCHEMA_REVISION`` (or is missing, or is
not SQLite at all) gives None, and the caller takes the ordinary path, which migrates.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kiln.registry.revision import SCHEMA_REVISION


def open_readonly(database: Path) -> sqlite3.Connection | None:
    """A read-only connection to ``database`` at the current schema revision, or None."""
    if not database.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=60)
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
