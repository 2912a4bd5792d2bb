"""Model queries on SQLite and PostgreSQL, including two registrations of one name at once."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection

from kiln.registry.engine import write_transaction
from kiln.registry.model_queries import get_model, insert_next_version, list_models
from kiln.workspace import Workspace


def _register(connection: Connection, name: str, digest: str = "d" * 64) -> int | None:
    return insert_next_version(
        connection,
        name=name,
        digest=digest,
        kind="file",
        file_name="model.pkl",
        size=3,
        description=None,
        tags='{"k": "v"}',
        run_id=None,
        env_name=None,
        env_version=None,
        created_at=1.5,
        created_by="alice",
    )


def test_model_queries_on_both_databases(workspace: Workspace) -> None:
    with write_transaction(workspace.engine) as connection:
        assert [_register(connection, n) for n in ("b", "a", "b")] == [1, 1, 2]
    with workspace.engine.connect() as connection:
        newest = get_model(connection, name="b")
        assert newest == {
            "name": "b",
            "version": 2,
            "digest": "d" * 64,
            "kind": "file",
            "file_name": "model.pkl",
            "size": 3,
            "description": None,
            "tags": '{"k": "v"}',
            "run_id": None,
            "env_name": None,
            "env_version": None,
            "created_at": 1.5,
            "created_by": "alice",
            "manifest": None,
        }
        first = get_model(connection, name="b", version=1)
        assert first is not None and first["version"] == 1
        assert get_model(connection, name="b", version=3) is None
        assert get_model(connection, name="c") is None
        listed = [(r["name"], r["version"]) for r in list_models(connection)]
        assert listed == [("a", 1), ("b", 1), ("b", 2)]
        assert [r["version"] for r in list_models(connection, name="b")] == [1, 2]


def test_a_registration_racing_another_takes_the_next_version(workspace: Workspace) -> None:
    """The first registration holds its new row uncommitted while the second one runs: on
    PostgreSQL the second's insert waits, fails on (name, version) and retries with the next
    number; on SQLite BEGIN IMMEDIATE makes it wait before reading. Either way: 1, then 2."""
    results: dict[str, Any] = {}
    started = threading.Event()

    def second() -> None:
        started.set()
        with write_transaction(workspace.engine) as connection:
            results["second"] = _register(connection, "m", "e" * 64)

    with write_transaction(workspace.engine) as connection:
        results["first"] = _register(connection, "m")
        racer = threading.Thread(target=second)
        racer.start()
        started.wait()
        racer.join(timeout=1.0)  # it is blocked behind our uncommitted row (or lock)
        assert racer.is_alive()
    racer.join(timeout=60)
    assert (results["first"], results["second"]) == (1, 2)
    with workspace.engine.connect() as connection:
        digests = [r["digest"][0] for r in list_models(connection, name="m")]
    assert digests == ["d", "e"]
