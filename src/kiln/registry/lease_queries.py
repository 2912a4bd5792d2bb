"""Keyword-only queries for build leases: one row per materialization being built somewhere.

Taking a lease is one statement that either inserts the row or changes nothing (``INSERT ...
ON CONFLICT DO NOTHING`` on both SQLite and PostgreSQL), so two machines asking at once never
both get it; taking over an expired one is an ``UPDATE`` guarded by the holder it read, so of two
machines that saw the same dead holder only one wins. Times are epoch seconds."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kiln.registry.schema import build_leases


class LeaseKey(NamedTuple):
    build_hash: str
    platform: str
    builder: str


class Holder(NamedTuple):
    holder: str  # a random id per take
    host: str
    pid: int
    building: str  # what, for those waiting (NAME:VERSION)


def _where(key: LeaseKey) -> Any:
    c = build_leases.c
    return (
        (c.build_hash == key.build_hash) & (c.platform == key.platform) & (c.builder == key.builder)
    )


def get_lease(connection: Connection, *, key: LeaseKey) -> dict[str, Any] | None:
    row = connection.execute(select(build_leases).where(_where(key))).first()
    return None if row is None else dict(row._mapping)


def insert_lease(
    connection: Connection, *, key: LeaseKey, holder: Holder, now: float, seconds: float
) -> bool:
    """Take a free lease; False when somebody holds it (expired or not)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(build_leases).values(
        **key._asdict(),
        **holder._asdict(),
        taken_at=now,
        heartbeat_at=now,
        expires_at=now + seconds,
    )
    # RETURNING rather than rowcount, which psycopg leaves at -1 for this statement.
    taken = statement.on_conflict_do_nothing().returning(build_leases.c.holder)
    return connection.execute(taken).first() is not None


def take_over_lease(
    connection: Connection,
    *,
    key: LeaseKey,
    holder: Holder,
    previous: str,
    now: float,
    seconds: float,
) -> bool:
    """Take the lease from the holder ``previous`` (whose lease expired, or whose process is
    dead); False when it changed hands meanwhile (another waiter took it first)."""
    statement = (
        update(build_leases)
        .where(_where(key), build_leases.c.holder == previous)
        .values(**holder._asdict(), taken_at=now, heartbeat_at=now, expires_at=now + seconds)
    )
    return connection.execute(statement).rowcount == 1


def renew_lease(
    connection: Connection, *, key: LeaseKey, holder: str, now: float, seconds: float
) -> bool:
    """Push the expiry on; False when the lease is no longer ours (taken over)."""
    statement = (
        update(build_leases)
        .where(_where(key), build_leases.c.holder == holder)
        .values(heartbeat_at=now, expires_at=now + seconds)
    )
    return connection.execute(statement).rowcount == 1


def release_lease(connection: Connection, *, key: LeaseKey, holder: str) -> bool:
    statement = delete(build_leases).where(_where(key), build_leases.c.holder == holder)
    return connection.execute(statement).rowcount == 1
