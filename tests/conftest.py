"""Shared fixtures: real workspaces on real SQLite files and real PostgreSQL databases.

PostgreSQL comes from ``KILN_TEST_POSTGRES_URL`` (scripts/postgres.sh sets one up; ``.ci/run``
always does). Each test gets a database of its own, dropped afterwards. Without the variable
the PostgreSQL variants are skipped locally, and fail under CI.

The shared fixtures of the other folders (``package_index``, ``project``, ``serve``, ...) come
from the kilntesting.fixtures plugin, registered here once for the whole suite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kiln.workspace import Workspace

pytest_plugins = ["kilntesting.fixtures", "kilntesting.images"]


def _expand(url: str) -> str:
    return os.path.expandvars(url)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; its URL keeps the password as ${VAR}."""
    template = os.environ.get("KILN_TEST_POSTGRES_URL")
    if not template:
        if os.environ.get("CI"):
            pytest.fail(
                "KILN_TEST_POSTGRES_URL is not set; .ci/run starts PostgreSQL for the tests"
            )
        pytest.skip("no PostgreSQL: run scripts/postgres.sh and set KILN_TEST_POSTGRES_URL")
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(_expand(template))
    name = f"kiln_{uuid.uuid4().hex[:16]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield template.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _drop_database(dsn, name)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """As ``postgres_url``, shared by the tests of one module (a server they all talk to)."""
    with fresh_postgres_database() as url:
        yield url


def _drop_database(dsn: str, name: str) -> None:
    """Drop a test database, forcing its sessions out. An autovacuum worker that happens to be
    in it cannot be terminated by a non-superuser (InsufficientPrivilege); it ends on its own
    within moments, so the drop is tried again a few times."""
    import time

    import psycopg

    for attempt in range(20):
        try:
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == 19:
                raise
            time.sleep(0.5)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None (the embedded SQLite default) or a PostgreSQL URL: tests run against both."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def workspace(tmp_path: Path, database_url: str | None) -> Iterator[Workspace]:
    ws = Workspace.create(tmp_path / "project", database_url=database_url)
    yield ws
    ws.close()


@pytest.fixture
def sqlite_workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.create(tmp_path / "project")
    yield ws
    ws.close()
