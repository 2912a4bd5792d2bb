"""The CLI faces of the server: create-admin, login (a 0600 file; KILN_TOKEN overrides it),
token create|list|revoke, and a server that is down."""

from __future__ import annotations

import json
import os
import stat
import subprocess

from kilntesting.cli import KILN, run_kiln
from kilntesting.teamserver import Team


def _login(team: Team, token: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KILN, "login", team.url, "--json"],
        input=token + "\n",
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_create_admin_refuses_an_existing_user(team: Team) -> None:
    again = run_kiln(
        "server", "create-admin", "admin", *team.workspace_args, env=team.env, check=False
    )
    assert again.returncode == 2
    assert "user 'admin' exists already" in again.stderr
    assert "kiln_" not in again.stdout + again.stderr


def test_login_stores_the_token_for_its_owner_only_and_the_cli_uses_it(team: Team) -> None:
    env = {**team.env, "KILN_CONFIG_DIR": str(team.root / "config-login")}
    logged = _login(team, team.admin_token, env)
    assert logged.returncode == 0, logged.stderr
    assert json.loads(logged.stdout) == {"name": "admin", "role": "admin"}
    stored = team.root / "config-login" / "login.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    made = json.loads(
        run_kiln("token", "create", "cli-user", "--role", "reader", "--json", env=env).stdout
    )
    assert made["owner"] == "cli-user" and made["role"] == "reader"
    listed = json.loads(run_kiln("token", "list", "--json", env=env).stdout)
    assert made["id"] in [t["id"] for t in listed]
    assert made["token"] not in json.dumps(listed)
    # KILN_TOKEN overrides the stored token: a reader may not make tokens for others
    as_reader = {**env, "KILN_TOKEN": made["token"]}
    refused = run_kiln("token", "create", "someone", "--role", "reader", env=as_reader, check=False)
    assert refused.returncode == 4
    assert "ask an admin" in refused.stderr
    revoked = json.loads(run_kiln("token", "revoke", str(made["id"]), "--json", env=env).stdout)
    assert revoked["revoked_at"] is not None
    gone = run_kiln("token", "list", env=as_reader, check=False)
    assert gone.returncode == 5
    assert "unknown or revoked" in gone.stderr


def test_a_bad_token_is_not_stored(team: Team) -> None:
    env = {**team.env, "KILN_CONFIG_DIR": str(team.root / "config-bad")}
    failed = _login(team, "kiln_" + "y" * 43, env)
    assert failed.returncode == 5
    assert "unknown or revoked" in failed.stderr
    assert not (team.root / "config-bad" / "login.json").exists()


def test_a_server_that_is_down_is_one_line_and_exit_5(team: Team) -> None:
    from kilntesting.images import free_port

    url = f"http://127.0.0.1:{free_port()}"
    down = run_kiln("token", "list", "--server", url, env=team.env, check=False)
    assert down.returncode == 5
    assert down.stderr.strip() == (
        f"kiln: error: cannot reach the Kiln server at {url} (ConnectError); "
        "check the URL and that the server runs"
    )
