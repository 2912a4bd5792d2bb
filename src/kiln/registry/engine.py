"""Open a registry database (SQLite file or PostgreSQL URL) and bring its schema up to date.

SQLite: WAL journal so readers never wait for a writer, a busy timeout so writers queue, and
``BEGIN IMMEDIATE`` for write transactions so two registrations never both read "next version
is 3" before either writes (pysqlite's own deferred BEGIN would let them). PostgreSQL: writers
lock the name's row with ``SELECT ... FOR UPDATE`` instead (see queries.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, OperationalError

from kiln.errors import WorkspaceError
from kiln.registry.diskfull import full_disk_error, is_disk_full
from kiln.registry.schema import SCHEMA_REVISION

_WRITE = "kiln_write"
_MIGRATIONS = Path(__file__).parent / "migrations"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def open_engine(url: str) -> Engine:
    """An engine for ``url`` whose schema is at ``SCHEMA_REVISION``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise WorkspaceError(
            f"database URL {url!r} is not valid; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        # hide_parameters: a failing statement's values (definitions) stay out of messages and logs
        engine = create_engine(parsed, connect_args={"timeout": 60}, hide_parameters=True)
        _configure_sqlite(engine)
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    else:
        raise WorkspaceError(
            f"unsupported database {parsed.get_backend_name()!r}; use SQLite or PostgreSQL"
        )
    try:
        _ensure_schema(engine)
    except BaseException:
        engine.dispose()  # no pooled connection outlives a registry that could not be opened
        raise
    return engine


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that may write: serialized against other writers on SQLite. A full disk
    is a WorkspaceError naming the database (the transaction is rolled back: nothing written)."""
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(**{_WRITE: True})
            with connection.begin():
                yield connection
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "42501":  # insufficient_privilege
            user = engine.url.username or "this role"
            reason = str(exc.orig).splitlines()[0]
            raise WorkspaceError(
                f"the database role {user!r} may not change Kiln's tables ({reason}); grant it "
                "the rights (e.g. make it the database's owner) or use a role that has them"
            ) from None
        if not _disk_full(engine, exc.orig):
            raise
        raise _full_disk_error(engine) from None


def _disk_full(engine: Engine, error: BaseException | None) -> bool:
    return is_disk_full(error, engine.url.database if engine.dialect.name == "sqlite" else None)


def _full_disk_error(engine: Engine) -> WorkspaceError:
    return full_disk_error(engine.url.database or engine.url.render_as_string(hide_password=True))


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
            return None if row is None else str(row[0])
    except DatabaseError as exc:
        if "alembic_version" in str(exc):
            return None
        if _disk_full(engine, exc.orig):
            raise _full_disk_error(engine) from None
        where = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).splitlines()[0]
        if engine.dialect.name != "sqlite" and isinstance(exc, OperationalError):
            # A server that is down or refuses the login, not a damaged registry.
            raise WorkspaceError(
                f"cannot reach the registry at {where}: {reason}; check that the database "
                "server is running and the URL and its password variable are right"
            ) from None
        raise WorkspaceError(
            f"cannot open the registry at {where}: {reason}; restore it from a backup"
        ) from None


def _ensure_schema(engine: Engine) -> None:
    """Upgrade to the newest revision, once, even with many processes opening at the same time."""
    if current_revision(engine) == SCHEMA_REVISION:
        return  # the common case: no Alembic import at all
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with write_transaction(engine) as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(7301)"))  # one migrator at a time
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
