"""A token is shown once, when it is made, and stored only as its sha256: not in the
database (its file or its rows), not in the server's log, not in any other response."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kilntesting.teamserver import Team


def _files(root: Path) -> list[Path]:
    """Everything the server and the registry wrote (not the CLI's login file, which is the
    one place a user keeps a token on purpose)."""
    return [p for p in root.rglob("*") if p.is_file() and "config" not in p.parts]


def test_tokens_are_shown_once_and_stored_only_as_hashes(team: Team) -> None:
    made = team.call(
        "POST", "/api/v1/tokens", team.admin_token, json={"owner": "sam", "role": "contributor"}
    )
    token = made.json()["token"]
    assert token.startswith("kiln_") and len(token) > 40
    definition = {"name": "secret-check", "python": {"version": "3.11"}}
    assert team.call("POST", "/api/v1/environments", token, json=definition).status_code == 201
    team.call("GET", "/api/v1/environments/secret-check", token)
    team.call("GET", "/api/v1/tokens", token)
    team.call("GET", "/api/v1/tokens", team.admin_token)
    team.call("GET", "/api/v1/audit", team.admin_token)
    team.call("GET", "/api/v1/environments", f"{token}x")  # a near miss is logged nowhere either
    rows = team.table_text()
    assert hashlib.sha256(token.encode()).hexdigest() in rows  # what is stored: the hash
    for secret in (token, team.admin_token):
        assert secret not in rows
        for path in _files(team.root):
            assert secret.encode() not in path.read_bytes(), path
        shown = [r for r in team.responses if secret in r]
        assert len(shown) == (1 if secret == token else 0)  # only the answer that made it
    assert "GET /api/v1/tokens" in team.log.read_text()  # the log is there, and was read


def test_registry_files_are_readable_by_their_owner_only(team: Team) -> None:
    for path in _files(team.root):
        if path.name != "server.log":
            assert path.stat().st_mode & 0o077 == 0, path


def test_secret_values_are_refused_by_the_server_and_stored_nowhere(team: Team) -> None:
    token = team.token("sid", "contributor")
    secret = "s3cr3t-Pa55w0rd-value"
    offers = {
        "environment_variables.API_PASSWORD": {"environment_variables": {"API_PASSWORD": secret}},
        "python.pip.index_url": {
            "python": {
                "version": "3.11",
                "pip": {"index_url": f"https://u:{secret}@pypi.example/simple"},
            }
        },
        "python.conda.channels": {
            "python": {
                "version": "3.11",
                "conda": {"channels": [f"https://u:{secret}@conda.example/c"]},
            }
        },
    }
    for field, offer in offers.items():
        answer = team.call("POST", "/api/v1/environments", token, json={"name": "leaky", **offer})
        assert answer.status_code in (400, 422), (field, answer.text)
        detail = answer.json()["detail"]
        assert "${" in detail and secret not in detail, (field, detail)
    rows = team.table_text()
    assert secret not in rows and "leaky" not in rows
    for path in _files(team.root):
        assert secret.encode() not in path.read_bytes(), path
