"""Keyword-only queries for deployments (SQLAlchemy Core). Rows are dicts of the stored values
(the spec as JSON text, times as epoch seconds)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from kiln.registry.schema import deployments


def get_deployment(connection: Connection, *, name: str) -> dict[str, Any] | None:
    query = select(deployments).where(deployments.c.name == name)
    row = connection.execute(query).mappings().first()
    return None if row is None else dict(row)


def list_deployments(connection: Connection) -> list[dict[str, Any]]:
    query = select(deployments).order_by(deployments.c.name)
    return [dict(row) for row in connection.execute(query).mappings()]


def insert_deployment(
    connection: Connection,
    *,
    name: str,
    state: str,
    spec: str,
    host: str,
    port: int | None,
    supervisor: str | None,
    now: float,
    kind: str = "process",
    created_by: str | None = None,
) -> None:
    """The first generation, not serving yet. Raises IntegrityError if the name exists."""
    connection.execute(
        insert(deployments).values(
            name=name,
            state=state,
            spec=spec,
            generation=1,
            applied_generation=0,
            host=host,
            port=port,
            supervisor=supervisor,
            error=None,
            kind=kind,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
    )


def set_deployment_fields(
    connection: Connection, *, name: str, values: Mapping[str, Any], now: float
) -> bool:
    statement = (
        update(deployments).where(deployments.c.name == name).values(**values, updated_at=now)
    )
    return connection.execute(statement).rowcount > 0


def request_generation(
    connection: Connection, *, name: str, spec: str, state: str, now: float
) -> int | None:
    """Ask for ``spec`` as the next generation and return its number (None: no deployment).
    The generation is counted in SQL, so two updates never share one."""
    statement = (
        update(deployments)
        .where(deployments.c.name == name)
        .values(
            spec=spec,
            generation=deployments.c.generation + 1,
            state=state,
            error=None,
            updated_at=now,
        )
        .returning(deployments.c.generation)
    )
    return connection.execute(statement).scalar()


def delete_deployment(connection: Connection, *, name: str) -> bool:
    statement = delete(deployments).where(deployments.c.name == name)
    return connection.execute(statement).rowcount > 0
