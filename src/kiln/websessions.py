"""Web UI sessions: a personal access token exchanged at login for a session token of the
same user, named after it (``web-session:ID``), so revoking the token ends its sessions, and
expiring no later than it. The web UI keeps the session token in a cookie; the personal token
never leaves the login form."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from kiln.accounts import SESSION_LABEL, Actor, hash_token, is_session, live_token_row, touch_used
from kiln.errors import Unauthorized
from kiln.secrets import TOKEN_PREFIX

if TYPE_CHECKING:
    from kiln.workspace import Workspace


def open_session(workspace: Workspace, token: str) -> tuple[Actor, str]:
    """Log in with a personal access token: a new session token for the same user (the web
    UI keeps it in a cookie, so the personal token never leaves the login form). The session
    is named after the token, so revoking the token ends it, and it expires no later."""
    from kiln.registry import account_queries as q
    from kiln.registry.engine import write_transaction

    parent = live_token_row(workspace, token)
    if is_session(parent["name"]):
        raise Unauthorized(
            "`token`: that is a web session's token; log in with a personal access token"
        )
    touch_used(workspace, parent)
    actor = Actor(parent["owner"], parent["role"])
    session = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction(workspace.engine) as connection:
        # Checked again under a lock: a revoke of the parent that overlaps this login either
        # finishes first (refused here) or waits and then ends the new session with the rest.
        if not q.hold_live_token(connection, token_id=parent["id"]):
            raise Unauthorized("the access token is unknown or revoked; ask an admin for a new one")
        token_id = q.insert_token(
            connection,
            name=f"{SESSION_LABEL}:{parent['id']}",
            owner=actor.name,
            token_sha256=hash_token(session),
            expires_at=parent["expires_at"],
        )
        q.record_action(
            connection, actor=actor.name, action="session.open", subject=f"{actor.name}/{token_id}"
        )
    return actor, session


def close_session(workspace: Workspace, session: str) -> None:
    """Log out: the session's token is revoked (a token that is not a session is left alone)."""
    from kiln.registry import account_queries as q
    from kiln.registry.engine import write_transaction

    with write_transaction(workspace.engine) as connection:
        found = q.find_token(connection, token_sha256=hash_token(session))
        if found is None or not is_session(found["name"]):
            return
        q.revoke_token(connection, token_id=found["id"])
        q.record_action(
            connection, actor=found["owner"], action="session.close", subject=str(found["id"])
        )
