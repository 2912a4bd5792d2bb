"""A web login that overlaps a revoke of the personal token it logs in with, ordered for real
on PostgreSQL: the login has read the token as live, the revoke (and the ending of the token's
sessions) commits, then the login writes its session. It must be refused, never a session that
outlives its token."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from kiln import accounts, websessions
from kiln.errors import Unauthorized
from kiln.registry import account_queries as q
from kiln.registry.schema import tokens
from kiln.workspace import Workspace


def _waiting_on_a_lock(workspace: Workspace) -> bool:
    with workspace.engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


def test_a_login_that_overlaps_a_revoke_makes_no_session(postgres_url: str, tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws", database_url=postgres_url)
    try:
        admin = accounts.Actor("root", "admin")
        accounts.create_admin(ws, "root")
        personal = accounts.create_token(ws, admin, owner="lee", role="reader", label="laptop")
        outcome: list[BaseException | str] = []

        def log_in() -> None:
            try:
                websessions.open_session(ws, personal.token)
                outcome.append("a session was made")  # not the token: test output is a log too
            except BaseException as exc:
                outcome.append(exc)

        # An exclusive table lock lets the login read the token (live) but holds its first
        # write; the revoke then commits, as a revoke between the login's read and write would.
        with ws.engine.connect() as revoking:
            revoking.begin()
            revoking.execute(text("LOCK TABLE tokens IN EXCLUSIVE MODE"))
            login = threading.Thread(target=log_in)
            login.start()
            deadline = time.monotonic() + 20
            while not _waiting_on_a_lock(ws):
                assert login.is_alive(), f"the login did not wait for the lock: {outcome}"
                assert time.monotonic() < deadline, "the login never reached its write"
                time.sleep(0.05)
            q.revoke_token(revoking, token_id=personal.id)
            q.revoke_tokens_named(revoking, name=f"web-session:{personal.id}")
            revoking.commit()
        login.join(timeout=20)

        assert len(outcome) == 1 and isinstance(outcome[0], Unauthorized), outcome
        with ws.engine.connect() as connection:
            live = connection.execute(
                select(tokens.c.id).where(
                    tokens.c.name == f"web-session:{personal.id}", tokens.c.revoked_at.is_(None)
                )
            ).all()
        assert live == []
        with pytest.raises(Unauthorized):
            websessions.open_session(ws, personal.token)
    finally:
        ws.close()
