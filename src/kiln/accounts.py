"""Accounts of a team server: users with a role, personal access tokens, and who may do what.

A token is ``kiln_`` + 32 random bytes (``secrets.token_urlsafe``), shown once when it is made;
the registry keeps only its sha256, so neither the database nor a backup can give one away.
Roles, from least to most: reader (reads everything), contributor (writes, and changes only
what it created), admin (users, tokens, and changes anything).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import re
import secrets
from typing import TYPE_CHECKING, Any, NamedTuple

from kiln.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from kiln.secrets import TOKEN_PREFIX

if TYPE_CHECKING:
    from kiln.workspace import Workspace

ROLES = ("reader", "contributor", "admin")
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,254}")
_TOUCH_EVERY = dt.timedelta(seconds=60)  # last_used is a write: at most once a minute
# A web UI session is a token of its own, labelled so: revocable and listed like any token,
# and refused once older than SESSION_LIFETIME, so a forgotten browser cookie dies by itself.
SESSION_LABEL = "web-session"
SESSION_LIFETIME = dt.timedelta(hours=12)
MAX_TOKEN_DAYS = 3650


class Actor(NamedTuple):
    """Who makes a request, and their role."""

    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class NewToken(NamedTuple):
    id: int
    name: str
    owner: str
    role: str
    token: str  # shown once, never stored


def local_actor() -> str:
    """Who writes to a registry opened directly (no server): the operating-system user."""
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # a uid without a passwd entry (containers)
        import os

        return f"local:uid{os.getuid()}"


def actor_name(actor: Actor | None) -> str:
    """Who a write is recorded as (``created_by``, the audit): the server's actor, else the
    local user."""
    return actor.name if actor is not None else local_actor()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidRequest(f"`role`: {role!r} is not a role; use one of {', '.join(ROLES)}")
    return role


def check_user_name(name: str) -> str:
    if not _USER_NAME.fullmatch(name):
        raise InvalidRequest(
            f"`name`: {name!r} is not a valid user name; use letters, digits and . _ @ -"
        )
    return name


def _make_token(
    workspace: Workspace,
    by: str,
    *,
    owner: str,
    role: str,
    label: str,
    expires_in_days: float | None = None,
) -> NewToken:
    from kiln.registry import account_queries as q
    from kiln.registry.engine import write_transaction

    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = None
    if expires_in_days is not None:
        if not 0 < expires_in_days <= MAX_TOKEN_DAYS:
            raise InvalidRequest(
                f"`expires_in_days`: {expires_in_days:g} must be more than 0 and at most "
                f"{MAX_TOKEN_DAYS} (omit it for a token that lasts until it is revoked)"
            )
        expires_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=expires_in_days)
    with write_transaction(workspace.engine) as connection:
        q.put_user(connection, name=owner, role=role)
        token_id = q.insert_token(
            connection,
            name=label,
            owner=owner,
            token_sha256=hash_token(token),
            expires_at=expires_at,
        )
        q.record_action(connection, actor=by, action="token.create", subject=f"{owner}/{token_id}")
        return NewToken(token_id, label, owner, role, token)


def create_admin(workspace: Workspace, name: str) -> NewToken:
    """The first admin, made on the server host: refused if the user exists already."""
    from kiln.registry.account_queries import get_user

    check_user_name(name)
    with workspace.engine.connect() as connection:
        if get_user(connection, name=name) is not None:
            raise InvalidRequest(
                f"`name`: user {name!r} exists already; an admin gives it a new token with "
                "`kiln token create`"
            )
    return _make_token(workspace, local_actor(), owner=name, role="admin", label="create-admin")


def create_token(
    workspace: Workspace,
    actor: Actor,
    *,
    owner: str,
    role: str | None,
    label: str,
    expires_in_days: float | None = None,
) -> NewToken:
    """Admins make tokens for anyone, creating the user or changing its role; every other
    user makes more tokens for themselves only, with their own role."""
    check_user_name(owner)
    if is_session(label):
        raise InvalidRequest(f"`name`: {label!r} is kept for web UI sessions; choose another name")
    if not actor.is_admin:
        if owner != actor.name or role not in (None, actor.role):
            raise Forbidden(
                f"a {actor.role} may only create tokens for themselves ({actor.name}) with "
                "their own role; ask an admin"
            )
        return _make_token(
            workspace,
            actor.name,
            owner=owner,
            role=actor.role,
            label=label,
            expires_in_days=expires_in_days,
        )
    if role is None:
        from kiln.registry.account_queries import get_user

        with workspace.engine.connect() as connection:
            user = get_user(connection, name=owner)
        if user is None:
            raise InvalidRequest(f"`role`: {owner!r} is a new user; give it a --role")
        role = str(user["role"])
    return _make_token(
        workspace,
        actor.name,
        owner=owner,
        role=check_role(role),
        label=label,
        expires_in_days=expires_in_days,
    )


def is_session(label: str) -> bool:
    """A web UI session's token: ``web-session:ID``, ID the personal token it was made from
    (``web-session`` alone: a session made before Kiln kept that)."""
    return label == SESSION_LABEL or label.startswith(SESSION_LABEL + ":")


def live_token_row(workspace: Workspace, token: str | None) -> dict[str, Any]:
    """The stored row of a token that may be used now; Unauthorized if it is missing,
    unknown, revoked or expired."""
    if not token:
        raise Unauthorized("no access token; send `Authorization: Bearer TOKEN`")
    from kiln.registry import account_queries as q

    digest = hash_token(token)
    with workspace.engine.connect() as connection:
        found = q.find_token(connection, token_sha256=digest)
    if found is None:
        raise Unauthorized("the access token is unknown or revoked; ask an admin for a new one")
    if is_session(found["name"]) and _age(found["created_at"]) > SESSION_LIFETIME:
        raise Unauthorized("the web session has expired; log in again")
    expires = found["expires_at"]
    if expires is not None and dt.datetime.now(dt.timezone.utc) >= expires:
        if is_session(found["name"]):
            raise Unauthorized("the web session has expired with its token; log in again")
        raise Unauthorized(
            f"the access token expired at {expires.isoformat(timespec='seconds')}; ask an admin "
            "for a new one (or make one with `kiln token create` while another works)"
        )
    return found


def authenticate(workspace: Workspace, token: str | None) -> Actor:
    """The actor a bearer token stands for; Unauthorized if it is missing, unknown or revoked."""
    found = live_token_row(workspace, token)
    touch_used(workspace, found)
    return Actor(found["owner"], found["role"])


def touch_used(workspace: Workspace, found: dict[str, Any]) -> None:
    last = found["last_used_at"]
    if last is None or dt.datetime.now(dt.timezone.utc) - last > _TOUCH_EVERY:
        from kiln.registry import account_queries as q
        from kiln.registry.engine import write_transaction

        with write_transaction(workspace.engine) as connection:
            q.touch_token(connection, token_id=found["id"])


def _age(created: dt.datetime) -> dt.timedelta:
    created = created if created.tzinfo else created.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc) - created


def list_tokens(workspace: Workspace, actor: Actor) -> list[dict[str, Any]]:
    """Admins see every token; anyone else their own."""
    from kiln.registry.account_queries import list_tokens as query

    with workspace.engine.connect() as connection:
        rows = query(connection, owner=None if actor.is_admin else actor.name)
    return [_public_token(row) for row in rows]


def revoke_token(workspace: Workspace, actor: Actor, token_id: int) -> dict[str, Any]:
    """Revoke the token and, in the same transaction, the web sessions logged in with it."""
    from kiln.registry import account_queries as q
    from kiln.registry.engine import write_transaction

    with write_transaction(workspace.engine) as connection:
        row = q.get_token(connection, token_id=token_id)
        if row is None or (row["owner"] != actor.name and not actor.is_admin):
            raise NotFound(f"no token {token_id}; see `kiln token list`")
        q.revoke_token(connection, token_id=token_id)
        q.record_action(connection, actor=actor.name, action="token.revoke", subject=str(token_id))
        for session_id in q.revoke_tokens_named(connection, name=f"{SESSION_LABEL}:{token_id}"):
            q.record_action(
                connection, actor=actor.name, action="session.close", subject=str(session_id)
            )
        row = q.get_token(connection, token_id=token_id)
    assert row is not None
    return _public_token(row)


def _public_token(row: dict[str, Any]) -> dict[str, Any]:
    from kiln.utctime import utc_text

    return {
        "id": row["id"],
        "name": row["name"],
        "owner": row["owner"],
        "created_at": utc_text(row["created_at"]),
        "last_used_at": utc_text(row["last_used_at"]),
        "revoked_at": utc_text(row["revoked_at"]),
        "expires_at": utc_text(row.get("expires_at")),
    }


def record_request(workspace: Workspace, actor: Actor | None, action: str, subject: str) -> None:
    """Audit a request whose work happens elsewhere (a rebuild started in the background, a
    test request sent to a deployment): who asked, for what, when."""
    from kiln.registry.account_queries import record_action
    from kiln.registry.engine import write_transaction

    with write_transaction(workspace.engine) as connection:
        record_action(connection, actor=actor_name(actor), action=action, subject=subject)


def require_writer(actor: Actor) -> None:
    if actor.role == "reader":
        raise Forbidden(f"{actor.name} is a reader; writes need a contributor or admin token")


def require_owner(actor: Actor, owners: list[str | None], what: str) -> None:
    """Contributors change only what they created; admins anything."""
    require_writer(actor)
    if not actor.is_admin and any(owner != actor.name for owner in owners):
        raise Forbidden(f"{what} was created by someone else; only they or an admin may change it")


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden(f"{actor.name} is a {actor.role}; this needs an admin token")


AUDIT_PAGE = 100
MAX_AUDIT_PAGE = 1000


def audit_entries(
    workspace: Workspace,
    *,
    since: dt.datetime | None = None,
    limit: int = AUDIT_PAGE,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The audit trail, newest first, a page at a time (``offset`` skips that many of the
    newest entries made since ``since``), as the public ``audit-entry`` rows."""
    from kiln.registry.account_queries import list_actions
    from kiln.utctime import utc_text

    if not 1 <= limit <= MAX_AUDIT_PAGE:
        raise InvalidRequest(f"`limit`: {limit} is out of range; ask for 1 to {MAX_AUDIT_PAGE}")
    if offset < 0:
        raise InvalidRequest(f"`offset`: {offset} is negative; skip 0 or more entries")
    with workspace.engine.connect() as connection:
        rows = list_actions(connection, since=since, limit=limit, offset=offset)
    return [
        {
            "actor": r["actor"],
            "action": r["action"],
            "object": r["object"],
            "at": utc_text(r["at"], timespec="milliseconds"),
        }
        for r in rows
    ]
