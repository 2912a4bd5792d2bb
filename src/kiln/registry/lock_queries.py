"""Keyword-only queries for locks and build records."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from kiln.registry.lockrow import LockRow as LockRow
from kiln.registry.schema import builds, locks


def _lock(row: Any) -> LockRow:
    created = (
        row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.timezone.utc)
    )
    return LockRow(
        row.build_hash,
        row.platform,
        row.generation,
        row.lock_digest,
        row.lock_format,
        row.lock_text,
        json.loads(row.packages),
        row.resolver,
        created,
    )


def get_lock(
    connection: Connection, *, build_hash: str, platform: str, generation: int | None = None
) -> LockRow | None:
    """A given generation, or the newest."""
    query = select(locks).where(locks.c.build_hash == build_hash, locks.c.platform == platform)
    if generation is None:
        query = query.order_by(locks.c.generation.desc()).limit(1)
    else:
        query = query.where(locks.c.generation == generation)
    row = connection.execute(query).first()
    return None if row is None else _lock(row)


def list_locks(connection: Connection, *, build_hash: str) -> list[LockRow]:
    query = (
        select(locks)
        .where(locks.c.build_hash == build_hash)
        .order_by(locks.c.platform, locks.c.generation)
    )
    return [_lock(row) for row in connection.execute(query)]


def insert_lock(
    connection: Connection,
    *,
    build_hash: str,
    platform: str,
    generation: int,
    lock_digest: str,
    lock_format: str,
    lock_text: str,
    packages: list[dict[str, str]],
    resolver: str,
) -> bool:
    """Store a generation. False if that generation exists already (another machine won)."""
    values = {
        "build_hash": build_hash,
        "platform": platform,
        "generation": generation,
        "lock_digest": lock_digest,
        "lock_format": lock_format,
        "lock_text": lock_text,
        "packages": json.dumps(packages),
        "resolver": resolver,
        "created_at": dt.datetime.now(dt.timezone.utc),
    }
    try:
        with connection.begin_nested():
            connection.execute(insert(locks).values(**values))
    except IntegrityError:
        return False
    return True


def record_build(connection: Connection, **values: Any) -> None:
    connection.execute(insert(builds).values(**values))


def latest_build(
    connection: Connection, *, build_hash: str, platform: str | None = None
) -> dict[str, Any] | None:
    query = select(builds).where(builds.c.build_hash == build_hash)
    if platform is not None:
        query = query.where(builds.c.platform == platform)
    row = connection.execute(query.order_by(builds.c.id.desc()).limit(1)).first()
    return None if row is None else dict(row._mapping)


def list_builds(
    connection: Connection, *, build_hash: str, limit: int = 100
) -> list[dict[str, Any]]:
    """The build attempts of ``build_hash`` on every machine, newest first."""
    query = select(builds).where(builds.c.build_hash == build_hash)
    rows = connection.execute(query.order_by(builds.c.id.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]
