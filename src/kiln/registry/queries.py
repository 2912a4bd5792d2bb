"""Keyword-only query functions over an open connection. No definition logic lives here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from kiln.errors import Conflict, InvalidRequest
from kiln.registry.schema import environment_names, environment_tags, environment_versions

if TYPE_CHECKING:
    from typing_extensions import Unpack

V = environment_versions


@dataclass(frozen=True)
class VersionRow:
    id: int
    name: str
    version: str
    definition_digest: str
    build_hash: str
    definition: str
    description: str | None
    archived: bool
    created_at: dt.datetime
    tags: dict[str, str]
    created_by: str | None = None


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _rows(connection: Connection, rows: Sequence[Row[tuple[object, ...]]]) -> list[VersionRow]:
    ids = [row.id for row in rows]
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(environment_tags).where(environment_tags.c.version_id.in_(chunk))
        for tag in connection.execute(query):
            tags[tag.version_id][tag.key] = tag.value
    return [
        VersionRow(
            id=row.id,
            name=row.name,
            version=row.version,
            definition_digest=row.definition_digest,
            build_hash=row.build_hash,
            definition=row.definition,
            description=row.description,
            archived=bool(row.archived),
            created_at=_utc(row.created_at),
            tags=tags[row.id],
            created_by=row.created_by,
        )
        for row in rows
    ]


def _lock_name(connection: Connection, *, name: str, now: dt.datetime) -> None:
    """Create the name's row if needed and lock it until the transaction ends."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(environment_names).values(name=name, created_at=now)
    connection.execute(statement.on_conflict_do_nothing(index_elements=["name"]))
    # On PostgreSQL this row lock queues concurrent registrations of the name; on SQLite the
    # whole database is already locked by BEGIN IMMEDIATE and FOR UPDATE is not emitted.
    connection.execute(
        select(environment_names.c.name).where(environment_names.c.name == name).with_for_update()
    )


def find_by_digest(
    connection: Connection, *, name: str, definition_digest: str
) -> VersionRow | None:
    query = (
        select(V)
        .where(V.c.name == name, V.c.definition_digest == definition_digest)
        .order_by(V.c.id.desc())
        .limit(1)
    )
    rows = _rows(connection, connection.execute(query).all())
    return rows[0] if rows else None


def insert_version(
    connection: Connection,
    *,
    name: str,
    version: str | None,
    definition_digest: str,
    build_hash: str,
    definition: str,
    description: str | None,
    tags: dict[str, str],
    created_by: str | None = None,
) -> tuple[VersionRow, bool]:
    """Register one version; returns (row, created). Same content as an existing version of
    the name returns that version; ``version=None`` takes the next integer."""
    now = dt.datetime.now(dt.timezone.utc)
    _lock_name(connection, name=name, now=now)
    if version is not None:
        existing = get_version(connection, name=name, version=version)
        if existing is not None:
            if existing.definition_digest == definition_digest:
                return existing, False
            raise Conflict(
                f"{name}:{version} already exists with other content; "
                "leave the version out to register the next one, or pick a new version"
            )
        _refuse_same_content(connection, name=name, version=version, digest=definition_digest)
    else:
        same = find_by_digest(connection, name=name, definition_digest=definition_digest)
        if same is not None:
            return same, False
        highest = connection.execute(
            select(func.max(V.c.version_number)).where(V.c.name == name)
        ).scalar()
        version = str((highest or 0) + 1)
    number = int(version) if version.isdigit() and len(version) < 10 else None
    values = {
        "name": name,
        "version": version,
        "version_number": number,
        "definition_digest": definition_digest,
        "build_hash": build_hash,
        "definition": definition,
        "description": description,
        "archived": False,
        "created_at": now,
        "created_by": created_by,
    }
    try:
        new_id = connection.execute(insert(V).values(**values).returning(V.c.id)).scalar_one()
    except IntegrityError:  # only reachable if the lock above was bypassed
        raise Conflict(
            f"{name}:{version} was registered by someone else at the same time; retry"
        ) from None
    if tags:
        connection.execute(
            insert(environment_tags),
            [{"version_id": new_id, "key": k, "value": v} for k, v in tags.items()],
        )
    row = get_version(connection, name=name, version=version)
    assert row is not None
    return row, True


def _refuse_same_content(connection: Connection, *, name: str, version: str, digest: str) -> None:
    """Same content is one version: an explicit new version of content the name already
    holds (``--version 0`` after ``--version 1e5``) is refused, naming the version it is."""
    same = find_by_digest(connection, name=name, definition_digest=digest)
    if same is not None:
        raise InvalidRequest(
            f"{name}:{same.version} already holds this content, so it cannot also be "
            f"{name}:{version}; use {name}:{same.version}, or change the definition first"
        )


def get_version(
    connection: Connection, *, name: str, version: str | None = None
) -> VersionRow | None:
    """A given version (archived or not), or the latest unarchived one."""
    query = select(V).where(V.c.name == name)
    if version is None:
        query = query.where(V.c.archived.is_(False)).order_by(V.c.id.desc()).limit(1)
    else:
        query = query.where(V.c.version == version)
    rows = _rows(connection, connection.execute(query).all())
    return rows[0] if rows else None


def names(connection: Connection) -> list[str]:
    """Every environment name ever registered (for a "did you mean")."""
    return list(connection.execute(select(environment_names.c.name)).scalars())


class VersionFilters(TypedDict, total=False):
    """What ``list_versions`` and ``count_versions`` select by; left out, it does not filter
    (``latest_only`` defaults to True, ``include_archived`` to False)."""

    name: str | None
    latest_only: bool
    include_archived: bool
    name_contains: str | None
    tags: dict[str, str | None] | None
    build_hash: str | None
    without_name: str | None


def _matching(filters: VersionFilters) -> Select[tuple[int]]:
    """The ids of the versions ``list_versions`` answers with."""
    conditions: list[ColumnElement[bool]] = []
    if not filters.get("include_archived", False):
        conditions.append(V.c.archived.is_(False))
    if (name := filters.get("name")) is not None:
        conditions.append(V.c.name == name)
    if (without_name := filters.get("without_name")) is not None:
        conditions.append(V.c.name != without_name)
    if name_contains := filters.get("name_contains"):
        escaped = (
            name_contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        )
        conditions.append(func.lower(V.c.name).like(f"%{escaped}%", escape="\\"))
    if (build_hash := filters.get("build_hash")) is not None:
        conditions.append(V.c.build_hash == build_hash)
    for key, value in (filters.get("tags") or {}).items():
        tag = environment_tags.c
        match = and_(tag.version_id == V.c.id, tag.key == key)
        conditions.append(
            exists().where(match if value is None else and_(match, tag.value == value))
        )
    if filters.get("latest_only", True):
        return select(func.max(V.c.id)).where(*conditions).group_by(V.c.name)
    return select(V.c.id).where(*conditions)


def list_versions(
    connection: Connection,
    *,
    limit: int | None = None,
    offset: int = 0,
    **filters: Unpack[VersionFilters],
) -> list[VersionRow]:
    """Versions ordered by name, then registration order (newest last); ``limit`` and
    ``offset`` page through them."""
    matching = _matching(filters).scalar_subquery()
    query = select(V).where(V.c.id.in_(matching)).order_by(V.c.name, V.c.id)
    if limit is not None or offset:
        query = query.limit(limit).offset(offset)
    return _rows(connection, connection.execute(query).all())


def count_versions(connection: Connection, **filters: Unpack[VersionFilters]) -> int:
    """How many versions ``list_versions`` answers with the same filters."""
    matching = _matching(filters).subquery()
    return int(connection.execute(select(func.count()).select_from(matching)).scalar_one())


def same_build(connection: Connection, *, build_hash: str) -> list[tuple[str, str]]:
    """(name, version) of every version built as ``build_hash``, by name then registration."""
    query = select(V.c.name, V.c.version).where(V.c.build_hash == build_hash)
    return [(n, v) for n, v in connection.execute(query.order_by(V.c.name, V.c.id))]


def set_archived(connection: Connection, *, name: str, version: str | None, archived: bool) -> int:
    statement = update(V).where(V.c.name == name).values(archived=archived)
    if version is not None:
        statement = statement.where(V.c.version == version)
    return connection.execute(statement).rowcount


def set_tags(
    connection: Connection, *, version_id: int, add: dict[str, str], remove: list[str]
) -> None:
    table = environment_tags
    keys = list(add) + remove
    if keys:
        connection.execute(
            table.delete().where(table.c.version_id == version_id, table.c.key.in_(keys))
        )
    if add:
        connection.execute(
            insert(table),
            [{"version_id": version_id, "key": k, "value": v} for k, v in add.items()],
        )
