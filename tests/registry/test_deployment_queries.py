"""Deployment queries on SQLite and PostgreSQL (the scoring services themselves are tested in
tests/serving/test_deployments.py, on SQLite)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import IntegrityError

from kiln.registry import deployment_queries as queries
from kiln.registry.engine import write_transaction
from kiln.workspace import Workspace


def _insert(workspace: Workspace, name: str, now: float = 1.0, kind: str = "process") -> None:
    with write_transaction(workspace.engine) as connection:
        queries.insert_deployment(
            connection,
            name=name,
            state="Transitioning",
            spec='{"models": ["m:1"]}',
            host="127.0.0.1",
            port=None,
            supervisor="host:1:2",
            now=now,
            kind=kind,
            created_by="bob",
        )


def test_deployment_queries_on_both_databases(workspace: Workspace) -> None:
    _insert(workspace, "web")
    _insert(workspace, "api", now=2.0, kind="container")
    with pytest.raises(IntegrityError):
        _insert(workspace, "web")
    with write_transaction(workspace.engine) as connection:
        values = {"state": "Healthy", "port": 8123, "applied_generation": 1}
        serving = {"image": "localhost/kiln/env:k", "image_digest": "sha256:d", "containers": "[]"}
        assert queries.set_deployment_fields(connection, name="api", values=serving, now=3.0)
        assert queries.set_deployment_fields(connection, name="web", values=values, now=3.0)
        assert not queries.set_deployment_fields(connection, name="none", values=values, now=3.0)
    with workspace.engine.connect() as connection:
        assert queries.get_deployment(connection, name="web") == {
            "name": "web",
            "state": "Healthy",
            "spec": '{"models": ["m:1"]}',
            "generation": 1,
            "applied_generation": 1,
            "host": "127.0.0.1",
            "port": 8123,
            "supervisor": "host:1:2",
            "error": None,
            "created_at": 1.0,
            "updated_at": 3.0,
            "kind": "process",
            "image": None,
            "image_digest": None,
            "containers": None,
            "created_by": "bob",
        }
        api = queries.get_deployment(connection, name="api")
        assert api is not None and api["kind"] == "container"
        assert (api["image"], api["image_digest"], api["containers"]) == tuple(serving.values())
        assert queries.get_deployment(connection, name="none") is None
        assert [r["name"] for r in queries.list_deployments(connection)] == ["api", "web"]
    with write_transaction(workspace.engine) as connection:
        assert queries.delete_deployment(connection, name="api")
        assert not queries.delete_deployment(connection, name="api")
    with workspace.engine.connect() as connection:
        assert [r["name"] for r in queries.list_deployments(connection)] == ["web"]


def test_each_update_gets_a_generation_of_its_own(workspace: Workspace) -> None:
    _insert(workspace, "web")
    with write_transaction(workspace.engine) as connection:
        queries.set_deployment_fields(connection, name="web", values={"error": "old"}, now=2.0)
        number = queries.request_generation(
            connection, name="web", spec='{"v": 2}', state="Updating", now=3.0
        )
        assert number == 2
        assert (
            queries.request_generation(connection, name="none", spec="{}", state="U", now=3.0)
            is None
        )
    results: dict[str, int | None] = {}

    def racer() -> None:
        with write_transaction(workspace.engine) as connection:
            results["racer"] = queries.request_generation(
                connection, name="web", spec='{"v": 4}', state="Updating", now=5.0
            )

    # Two updates at once: the second waits for the first's row and counts on from its value.
    with write_transaction(workspace.engine) as connection:
        results["first"] = queries.request_generation(
            connection, name="web", spec='{"v": 3}', state="Updating", now=4.0
        )
        thread = threading.Thread(target=racer)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()
    thread.join(timeout=60)
    assert (results["first"], results["racer"]) == (3, 4)
    with workspace.engine.connect() as connection:
        row = queries.get_deployment(connection, name="web")
    assert row is not None
    assert (row["generation"], row["spec"], row["error"], row["updated_at"]) == (
        4,
        '{"v": 4}',
        None,
        5.0,
    )
