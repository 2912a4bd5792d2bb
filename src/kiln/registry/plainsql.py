"""One SQL text for both registry drivers: statements with ``:named`` parameters run through
the standard library's sqlite3 for the embedded registry (no SQLAlchemy import, ~0.2 s here, on
paths that must start fast) and through SQLAlchemy for PostgreSQL. Callers keep to portable SQL:
epoch-second floats for times, JSON as text, booleans as Python bools.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from kiln.registry.revision import SCHEMA_REVISION

if TYPE_CHECKING:
    from kiln.workspace import Workspace


class Database(Protocol):
    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]: ...
    def write(self) -> contextlib.AbstractContextManager[Writer]: ...
    def close(self) -> None: ...


class Writer(Protocol):
    def run(self, sql: str, params: Mapping[str, Any]) -> int: ...
    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]: ...


class _Sqlite:
    """The embedded registry through the standard library: WAL, a busy timeout, and
    ``BEGIN IMMEDIATE`` for writers, as the SQLAlchemy engine configures it."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, timeout=60, isolation_level=None)
        self.connection.row_factory = sqlite3.Row
        self.connection.execute("PRAGMA busy_timeout=60000")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.connection.execute("PRAGMA synchronous=NORMAL")

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(r) for r in self.connection.execute(sql, params).fetchall()]

    def run(self, sql: str, params: Mapping[str, Any]) -> int:
        return self.connection.execute(sql, params).rowcount

    @contextlib.contextmanager
    def write(self) -> Iterator[_Sqlite]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()


class _Alchemy:
    def __init__(self, workspace: Workspace) -> None:
        self.engine = workspace.engine

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(text(sql), dict(params)).mappings()]

    @contextlib.contextmanager
    def write(self) -> Iterator[_AlchemyWriter]:
        from kiln.registry.engine import write_transaction

        with write_transaction(self.engine) as connection:
            yield _AlchemyWriter(connection)

    def close(self) -> None:
        pass  # the workspace owns the engine


class _AlchemyWriter:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def run(self, sql: str, params: Mapping[str, Any]) -> int:
        from sqlalchemy import text

        result = self.connection.execute(text(sql), dict(params))
        return int(result.rowcount)

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        from sqlalchemy import text

        return [dict(r) for r in self.connection.execute(text(sql), dict(params)).mappings()]


def open_database(workspace: Workspace) -> Database:
    if not workspace.is_embedded:
        return _Alchemy(workspace)
    database = _Sqlite(str(workspace.registry_file))
    try:
        revision = database.rows("SELECT version_num FROM alembic_version", {})
    except sqlite3.Error:
        revision = []
    if revision != [{"version_num": SCHEMA_REVISION}]:
        database.close()
        workspace.engine  # noqa: B018 - opening the engine migrates the schema (once, locked)
        database = _Sqlite(str(workspace.registry_file))
    return database
