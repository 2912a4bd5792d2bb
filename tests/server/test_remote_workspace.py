"""`kiln env register|list|show` with KILN_WORKSPACE=http://HOST:PORT print what the same
commands print on the server host's own workspace; what does not work remotely yet says so
in one line."""

from __future__ import annotations

import json
from pathlib import Path

from kilntesting.cli import run_kiln
from kilntesting.teamserver import Team


def _remote(team: Team, token: str) -> dict[str, str]:
    return {**team.env, "KILN_WORKSPACE": team.url, "KILN_TOKEN": token}


def _on_host(team: Team) -> dict[str, str]:
    return {
        **team.env,
        "KILN_WORKSPACE": str(team.root / ("server" if team.database_url else "ws")),
    }


def test_register_list_and_show_through_the_server(team: Team, tmp_path: Path) -> None:
    remote = _remote(team, team.token("remy", "contributor"))
    source = tmp_path / "kiln.yml"
    source.write_text(
        "name: remote-env\ntags: {team: far}\npython:\n  version: '3.11'\n"
        "  pip:\n    packages: [numpy==2.0.0]\nenvironment_variables: {API_TOKEN: '${API_TOKEN}'}\n"
    )
    made = json.loads(run_kiln("env", "register", "-f", str(source), "--json", env=remote).stdout)
    assert (made["name"], made["version"], made["created"]) == ("remote-env", "1", True)
    again = json.loads(run_kiln("env", "register", "-f", str(source), "--json", env=remote).stdout)
    assert (again["version"], again["created"]) == ("1", False)
    text = run_kiln("env", "register", "-f", str(source), env=remote).stdout
    assert text == "Unchanged: same content as remote-env:1\n"
    for command in (
        ["env", "list", "--json", "--search", "remote-"],
        ["env", "list", "--tag", "team=far", "--all-versions"],
        ["env", "show", "remote-env:1", "--json"],
        ["env", "show", "remote-env"],
        ["env", "show", "Kiln-inference-py311", "--json"],
    ):
        assert (
            run_kiln(*command, env=remote).stdout == run_kiln(*command, env=_on_host(team)).stdout
        )


def test_remote_errors_are_the_servers_one_line_messages(team: Team, tmp_path: Path) -> None:
    reader = _remote(team, team.token("rhea", "reader"))
    source = tmp_path / "kiln.yml"
    source.write_text("name: not-mine\npython: {version: '3.11'}\n")
    refused = run_kiln("env", "register", "-f", str(source), env=reader, check=False)
    assert (refused.returncode, refused.stderr) == (
        4,
        "kiln: error: rhea is a reader; writes need a contributor or admin token\n",
    )
    missing = run_kiln("env", "show", "nothing-here", env=reader, check=False)
    assert missing.returncode == 3 and missing.stderr.startswith("kiln: error: no environment")
    unknown = run_kiln("env", "list", env={**reader, "KILN_TOKEN": "kiln_" + "z" * 43}, check=False)
    assert unknown.returncode == 5 and "unknown or revoked" in unknown.stderr
    later = run_kiln("env", "archive", "not-mine", env=reader, check=False)
    assert later.returncode == 5
    assert "does not work against a Kiln server yet" in later.stderr
    assert len(later.stderr.strip().splitlines()) == 1
