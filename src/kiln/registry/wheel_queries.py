"""Keyword-only queries for stored wheels."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, or_, select
from sqlalchemy.exc import IntegrityError

from kiln.registry.schema import wheels


@dataclass(frozen=True)
class WheelRow:
    name: str
    version: str
    filename: str
    sha256: str
    size: int
    added_at: dt.datetime


def _wheel(row: Any) -> WheelRow:
    added = row.added_at if row.added_at.tzinfo else row.added_at.replace(tzinfo=dt.timezone.utc)
    return WheelRow(row.name, row.version, row.filename, row.sha256, row.size, added)


def find_wheel(
    connection: Connection, *, filename: str | None = None, sha256: str | None = None
) -> WheelRow | None:
    """The wheel with this file name or this content (either matches)."""
    conditions = []
    if filename is not None:
        conditions.append(wheels.c.filename == filename)
    if sha256 is not None:
        conditions.append(wheels.c.sha256 == sha256)
    if not conditions:
        return None
    row = connection.execute(select(wheels).where(or_(*conditions)).limit(1)).first()
    return None if row is None else _wheel(row)


def list_wheels(connection: Connection) -> list[WheelRow]:
    query = select(wheels).order_by(wheels.c.name, wheels.c.version, wheels.c.filename)
    return [_wheel(row) for row in connection.execute(query)]


def insert_wheel(
    connection: Connection, *, name: str, version: str, filename: str, sha256: str, size: int
) -> bool:
    """Record a wheel. False if its content or file name is recorded already (a race lost)."""
    values = {
        "name": name,
        "version": version,
        "filename": filename,
        "sha256": sha256,
        "size": size,
        "added_at": dt.datetime.now(dt.timezone.utc),
    }
    try:
        with connection.begin_nested():
            connection.execute(insert(wheels).values(**values))
    except IntegrityError:
        return False
    return True
