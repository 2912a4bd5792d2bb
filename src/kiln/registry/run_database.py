"""The runs store's database: the run and target queries plus how to read and write, behind one
small Protocol, with three implementations.

- ``ServerRunDatabase`` (``server_runs``): requests to the API of the ``kiln server`` that serves
  the workspace, which runs the same queries on its registry.
- ``CoreRunDatabase``: SQLAlchemy (``run_queries``, ``target_queries``) on the workspace's
  engine, for PostgreSQL.
- ``FastRunDatabase``: the standard library (``fastruns``) on the embedded SQLite registry.
  Measured reason it stays: a whole warm ``kiln run submit`` of a one-line script takes 0.20-0.23 s on
  the 2-core machine and imports no SQLAlchemy module, while ``python -X importtime -c 'import
  sqlalchemy'`` alone takes 0.54-1.0 s there (bench/runs.py's budget: 0.3 s over the bare
  script); the store writes before and after the script runs.

Both query modules have the same functions with the same keyword arguments (``RunQueries``);
tests/registry/test_run_queries.py checks they give the same results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from kiln.registry.readonly import immediate_transaction, open_writable

if TYPE_CHECKING:
    import sqlite3

    from sqlalchemy import Engine

    from kiln.workspace import Workspace


class RunQueries(Protocol):
    """What ``run_queries`` + ``target_queries`` and ``fastruns`` both provide."""

    def insert_run(self, connection: Any, *, row: Mapping[str, Any]) -> None: ...
    def get_run(self, connection: Any, *, run_id: str) -> dict[str, Any] | None: ...
    def find_runs(
        self,
        connection: Any,
        *,
        experiment: str | None = None,
        env_name: str | None = None,
        env_version: str | None = None,
        status: str | None = None,
        limit: int,
        offset: int = 0,
    ) -> list[dict[str, Any]]: ...
    def update_run(
        self,
        connection: Any,
        *,
        run_id: str,
        values: Mapping[str, Any],
        unless_status: Collection[str] = (),
    ) -> bool: ...
    def take_over_run(
        self,
        connection: Any,
        *,
        run_id: str,
        old_watcher: str | None,
        new_watcher: str,
        unless_status: Collection[str] = (),
    ) -> bool: ...
    def insert_metrics(
        self, connection: Any, *, run_id: str, metrics: Sequence[tuple[str, str, float]]
    ) -> None: ...
    def list_metrics(self, connection: Any, *, run_id: str) -> list[tuple[str, str]]: ...
    def put_target(
        self,
        connection: Any,
        *,
        name: str,
        kind: str,
        address: str,
        created_at: float,
        created_by: str | None,
    ) -> None: ...
    def list_targets(self, connection: Any) -> list[dict[str, Any]]: ...
    def delete_target(self, connection: Any, *, name: str) -> bool: ...


class RunDatabase(Protocol):
    queries: RunQueries

    def reading(self) -> contextlib.AbstractContextManager[Any]: ...
    def writing(self) -> contextlib.AbstractContextManager[Any]: ...
    def close(self) -> None: ...
    def finish_run(
        self,
        *,
        run_id: str,
        values: Mapping[str, Any],
        unless_status: Collection[str],
        metrics: Sequence[tuple[str, str, float]],
    ) -> bool:
        """The run's final values and its metrics in one transaction, unless its status is in
        ``unless_status``: False then, and nothing is written."""


def finish_in_transaction(
    database: RunDatabase,
    *,
    run_id: str,
    values: Mapping[str, Any],
    unless_status: Collection[str],
    metrics: Sequence[tuple[str, str, float]],
) -> bool:
    """``finish_run`` of a database with transactions of its own."""
    with database.writing() as tx:
        if not database.queries.update_run(
            tx, run_id=run_id, values=values, unless_status=unless_status
        ):
            return False
        database.queries.insert_metrics(tx, run_id=run_id, metrics=metrics)
    return True


class CoreRunDatabase:
    """SQLAlchemy, on any registry."""

    def __init__(self, engine: Engine) -> None:
        from kiln.registry import core_run_queries

        self.engine = engine
        self.queries: RunQueries = core_run_queries

    def reading(self) -> contextlib.AbstractContextManager[Any]:
        return self.engine.connect()

    def writing(self) -> contextlib.AbstractContextManager[Any]:
        from kiln.registry.engine import write_transaction

        return write_transaction(self.engine)

    def close(self) -> None:
        pass  # the workspace owns the engine

    finish_run = finish_in_transaction


class FastRunDatabase:
    """The standard library, on the embedded SQLite registry at the current revision."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        from kiln.registry import fastruns

        self.connection = connection
        self.queries: RunQueries = fastruns

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        yield self.connection  # autocommit: each read sees the newest committed data

    def writing(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return immediate_transaction(self.connection)

    def close(self) -> None:
        self.connection.close()

    finish_run = finish_in_transaction


def open_run_database(workspace: Workspace) -> RunDatabase:
    if workspace.server_url is not None:
        from kiln.registry.server_runs import ServerRunDatabase

        return ServerRunDatabase(workspace.server_url)
    if not workspace.is_embedded:
        return CoreRunDatabase(workspace.engine)
    connection = open_writable(workspace.registry_file)
    if connection is None:  # missing or older schema: opening the engine migrates it (locked)
        workspace.engine  # noqa: B018
        connection = open_writable(workspace.registry_file)
    if connection is None:
        return CoreRunDatabase(workspace.engine)
    return FastRunDatabase(connection)
