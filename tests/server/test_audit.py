"""Every write is audited in its own transaction: who, what, on which object, when; admins read
the trail through the API and `kiln audit`, or from the registry itself on the server host."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from kiln.accounts import audit_entries
from kiln.errors import InvalidRequest
from kiln.workspace import Workspace
from kilntesting.cli import run_kiln
from kilntesting.teamserver import Team


def test_writes_leave_audit_rows_that_admins_read(team: Team) -> None:
    since = dt.datetime.now(dt.timezone.utc).isoformat()
    ann = team.token("auditee", "contributor")
    definition = {"name": "audited", "python": {"version": "3.11"}}
    assert team.call("POST", "/api/v1/environments", ann, json=definition).status_code == 201
    unchanged = team.call("POST", "/api/v1/environments", ann, json=definition)
    assert unchanged.status_code == 200 and unchanged.json()["created"] is False
    tags = {"json": {"add": {"stage": "dev"}, "remove": []}}
    assert team.call("POST", "/api/v1/environments/audited/versions/1/tags", ann, **tags).is_success
    assert team.call("POST", "/api/v1/environments/audited/archive", team.admin_token).is_success
    entries = team.call("GET", "/api/v1/audit", team.admin_token, params={"since": since}).json()
    assert [(e["actor"], e["action"], e["object"]) for e in entries] == [  # newest first
        ("admin", "environment.archive", "audited"),
        ("auditee", "environment.tag", "audited:1"),
        ("auditee", "environment.register", "audited:1"),  # once: the unchanged one wrote nothing
        ("admin", "token.create", f"auditee/{entries[-1]['object'].split('/')[1]}"),
    ]
    paged = {"since": since, "limit": 2, "offset": 1}
    assert team.call("GET", "/api/v1/audit", team.admin_token, params=paged).json() == entries[1:3]
    start = dt.datetime.fromisoformat(since)
    start = start.replace(microsecond=start.microsecond // 1000 * 1000)  # times are in ms
    assert all(dt.datetime.fromisoformat(e["at"]) >= start for e in entries)
    env = {**team.env, "KILN_TOKEN": team.admin_token}
    remote = run_kiln("audit", "--server", team.url, "--since", since, "--json", env=env)
    assert json.loads(remote.stdout) == entries
    local = run_kiln("audit", "--since", since, "--json", env=_local(team))
    assert json.loads(local.stdout) == entries
    paging = ["--limit", "1", "--offset", "2", "--json"]
    remote = run_kiln("audit", "--server", team.url, "--since", since, *paging, env=env)
    assert json.loads(remote.stdout) == entries[2:3]


def _local(team: Team) -> dict[str, str]:
    """The CLI on the server host, reading the registry directly."""
    folder = team.root / ("server" if team.database_url else "ws")
    return {**team.env, "KILN_WORKSPACE": str(folder)}


def test_a_version_records_who_registered_it(team: Team) -> None:
    pat = team.token("pat", "contributor")
    definition = {"name": "owned", "python": {"version": "3.11"}}
    assert team.call("POST", "/api/v1/environments", pat, json=definition).status_code == 201
    rows = team.table_text()
    assert "'owned', '1'" in rows
    owned = [line for line in rows.splitlines() if "'owned', '1'" in line]
    assert owned and owned[0].rstrip(")").endswith("'pat'")


def test_the_trail_pages_newest_first_past_a_thousand_rows(workspace: Workspace) -> None:
    """On SQLite and PostgreSQL: the newest entries come first however long the trail is."""
    from kiln.registry.account_queries import record_action
    from kiln.registry.engine import write_transaction

    with write_transaction(workspace.engine) as connection:
        for i in range(1005):
            record_action(connection, actor="bulk", action="test.step", subject=str(i))
    newest = audit_entries(workspace, limit=3)
    assert [e["object"] for e in newest] == ["1004", "1003", "1002"]
    oldest = audit_entries(workspace, limit=1000, offset=1003)
    assert [e["object"] for e in oldest] == ["1", "0"]
    later = dt.datetime.fromisoformat(newest[0]["at"]) + dt.timedelta(seconds=1)
    assert audit_entries(workspace, since=later) == []
    with pytest.raises(InvalidRequest, match=r"^`limit`: 5000 is out of range; ask for 1 to 1000"):
        audit_entries(workspace, limit=5000)
