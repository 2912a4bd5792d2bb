"""Keyword-only queries for a team server's accounts: users, tokens (sha256 only) and the
append-only audit table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, insert, select, update

from kiln.registry.schema import audit, tokens, users


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def get_user(connection: Connection, *, name: str) -> dict[str, Any] | None:
    row = connection.execute(select(users).where(users.c.name == name)).first()
    return None if row is None else dict(row._mapping)


def put_user(connection: Connection, *, name: str, role: str) -> None:
    """Create the user, or give an existing one ``role``."""
    if get_user(connection, name=name) is None:
        connection.execute(insert(users).values(name=name, role=role, created_at=_now()))
    else:
        connection.execute(update(users).where(users.c.name == name).values(role=role))


def insert_token(
    connection: Connection,
    *,
    name: str,
    owner: str,
    token_sha256: str,
    expires_at: dt.datetime | None = None,
) -> int:
    statement = insert(tokens).values(
        name=name,
        owner=owner,
        token_sha256=token_sha256,
        created_at=_now(),
        expires_at=expires_at,
    )
    return int(connection.execute(statement.returning(tokens.c.id)).scalar_one())


def find_token(connection: Connection, *, token_sha256: str) -> dict[str, Any] | None:
    """The live token with this hash, with its owner's role; None if unknown or revoked."""
    query = (
        select(tokens, users.c.role)
        .join(users, users.c.name == tokens.c.owner)
        .where(tokens.c.token_sha256 == token_sha256, tokens.c.revoked_at.is_(None))
    )
    row = connection.execute(query).first()
    if row is None:
        return None
    found = dict(row._mapping)
    found["last_used_at"] = _utc(found["last_used_at"])
    found["expires_at"] = _utc(found["expires_at"])
    return found


def hold_live_token(connection: Connection, *, token_id: int) -> bool:
    """Lock the token's row until the transaction ends (PostgreSQL; SQLite's write
    transactions are serial anyway) and say whether it is still unrevoked: a revoke running
    at the same time then waits for this transaction, or this one sees it."""
    query = (
        select(tokens.c.id)
        .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
        .with_for_update()
    )
    return connection.execute(query).first() is not None


def touch_token(connection: Connection, *, token_id: int) -> None:
    statement = update(tokens).where(tokens.c.id == token_id).values(last_used_at=_now())
    connection.execute(statement)


def list_tokens(connection: Connection, *, owner: str | None = None) -> list[dict[str, Any]]:
    """Tokens without their hash, oldest first."""
    columns = [c for c in tokens.c if c.name != "token_sha256"]
    query = select(*columns).order_by(tokens.c.id)
    if owner is not None:
        query = query.where(tokens.c.owner == owner)
    return [dict(row._mapping) for row in connection.execute(query)]


def get_token(connection: Connection, *, token_id: int) -> dict[str, Any] | None:
    columns = [c for c in tokens.c if c.name != "token_sha256"]
    row = connection.execute(select(*columns).where(tokens.c.id == token_id)).first()
    return None if row is None else dict(row._mapping)


def revoke_token(connection: Connection, *, token_id: int) -> None:
    statement = (
        update(tokens)
        .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=_now())
    )
    connection.execute(statement)


def revoke_tokens_named(connection: Connection, *, name: str) -> list[int]:
    """Revoke the live tokens labelled ``name`` (the web sessions of one token); their ids."""
    statement = (
        update(tokens)
        .where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
        .values(revoked_at=_now())
        .returning(tokens.c.id)
    )
    return sorted(int(token_id) for token_id in connection.execute(statement).scalars())


def record_action(connection: Connection, *, actor: str, action: str, subject: str) -> None:
    """Append one audit row; call it inside the write's own transaction."""
    values = {"actor": actor, "action": action, "object": subject, "at": _now()}
    connection.execute(insert(audit).values(**values))


def list_actions(
    connection: Connection,
    *,
    since: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Audit rows, newest first (rows are appended, so the id orders them); ``offset`` skips
    that many of the newest."""
    query = select(audit).order_by(audit.c.id.desc())
    if since is not None:
        query = query.where(audit.c.at >= since)
    rows = [dict(row._mapping) for row in connection.execute(query.limit(limit).offset(offset))]
    for row in rows:
        row["at"] = _utc(row["at"])
    return rows
