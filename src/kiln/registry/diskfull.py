"""One reading of "the registry's disk is full", for the SQLAlchemy engine and the standard
library's sqlite3 writers alike. Standard library only."""

from __future__ import annotations

from pathlib import Path

from kiln.errors import WorkspaceError

NEARLY_FULL = 1024 * 1024  # free bytes below which an SQLite I/O error means "disk full"


def is_disk_full(error: BaseException | None, sqlite_file: str | None) -> bool:
    """SQLite's SQLITE_FULL, or its I/O error on a file system with no space left (how a full
    disk shows when the WAL index cannot grow); PostgreSQL's disk full (SQLSTATE 53100)."""
    if getattr(error, "sqlstate", None) == "53100":
        return True
    message = str(error)
    if "database or disk is full" in message:
        return True
    if not sqlite_file or "disk I/O error" not in message:
        return False
    import shutil  # here: the read-only fast paths import this module

    try:
        return shutil.disk_usage(Path(sqlite_file).parent).free < NEARLY_FULL
    except OSError:
        return False


def full_disk_error(where: str) -> WorkspaceError:
    return WorkspaceError(
        f"the disk holding {where} is full; nothing was written: free some space and retry"
    )
