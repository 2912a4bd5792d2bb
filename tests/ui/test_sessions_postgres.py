"""The UI's sessions on a server whose registry is PostgreSQL: the same login, form token,
logout and expiry as on SQLite (tests/ui/test_pages_http.py), through the same core."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from uisite import Site, form_token, session_cookie

from kilntesting.teamserver import team_server


@pytest.fixture(scope="module")
def pg_site(tmp_path_factory: pytest.TempPathFactory, module_postgres_url: str) -> Iterator[Site]:
    root: Path = tmp_path_factory.mktemp("ui-pg")
    with team_server(root, database_url=module_postgres_url) as team:
        yield Site(team, run_id="")


def _age_sessions(site: Site, hours: int) -> None:
    from sqlalchemy import update

    from kiln.registry.schema import tokens
    from kiln.workspace import Workspace

    ws = Workspace(site.team.root / "server")
    try:
        with ws.engine.begin() as connection:
            old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours)
            statement = update(tokens).where(tokens.c.name.startswith("web-session:"))
            connection.execute(statement.values(created_at=old))
    finally:
        ws.close()


def test_a_session_on_postgres_logs_in_posts_and_expires(pg_site: Site) -> None:
    client = session_cookie(pg_site, pg_site.team.admin_token)
    page = client.get("/environments")
    assert page.status_code == 200 and "admin" in page.text
    assert "session.open" in client.get("/audit").text
    assert client.post("/logout", data={"csrf": "0" * 64}).status_code == 403
    _age_sessions(pg_site, 11)
    assert client.get("/environments").status_code == 200  # 11 hours: still open
    _age_sessions(pg_site, 13)
    assert client.get("/environments").status_code == 303  # 13 hours: the login page


def test_logout_on_postgres_revokes_the_session(pg_site: Site) -> None:
    client = session_cookie(pg_site, pg_site.team.token("pat-pg", "contributor"))
    session = client.cookies["kiln_session"]
    answer = client.post("/logout", data={"csrf": form_token(client.get("/environments").text)})
    assert answer.status_code == 303
    again = httpx.get(pg_site.url + "/environments", cookies={"kiln_session": session})
    assert again.status_code == 303


def test_revoking_a_token_on_postgres_ends_its_sessions(pg_site: Site) -> None:
    made = pg_site.team.call(
        "POST",
        "/api/v1/tokens",
        pg_site.team.admin_token,
        json={"owner": "rev-pg", "role": "reader"},
    ).json()
    kept = session_cookie(pg_site, pg_site.team.token("rev-pg", "reader"))
    ended = [session_cookie(pg_site, made["token"]) for _ in range(2)]
    revoke = f"/api/v1/tokens/{made['id']}/revoke"
    assert pg_site.team.call("POST", revoke, pg_site.team.admin_token).status_code == 200
    assert [c.get("/environments").status_code for c in ended] == [303, 303]
    assert kept.get("/environments").status_code == 200  # another token's session stays
