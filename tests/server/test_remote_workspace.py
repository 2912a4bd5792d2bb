"""`kiln env register|list|show|tag|archive|restore`, `kiln doctor` and the SDK with
KILN_WORKSPACE=http://HOST:PORT behave as on the server host's own workspace; what does not work
remotely yet says so in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_tag_archive_and_restore_through_the_server_keep_ownership(
    team: Team, tmp_path: Path
) -> None:
    owner = _remote(team, team.token("olga", "contributor"))
    other = _remote(team, team.token("otto", "contributor"))
    source = tmp_path / "kiln.yml"
    source.write_text("name: owned-remotely\npython: {version: '3.11'}\n")
    run_kiln("env", "register", "-f", str(source), env=owner)
    tagged = json.loads(
        run_kiln("env", "tag", "owned-remotely", "stage=dev", "--json", env=owner).stdout
    )
    assert tagged["tags"] == {"stage": "dev"}
    for command in (
        ["env", "tag", "owned-remotely", "stage=prod"],
        ["env", "archive", "owned-remotely"],
    ):
        refused = run_kiln(*command, env=other, check=False)
        assert refused.returncode == 4 and "created by someone else" in refused.stderr
    run_kiln("env", "archive", "owned-remotely:1", env=owner)
    listed = run_kiln("env", "list", "--search", "owned-remotely", "--json", env=owner).stdout
    assert json.loads(listed) == []
    run_kiln("env", "restore", "owned-remotely:1", env=owner)
    shown = json.loads(run_kiln("env", "show", "owned-remotely", "--json", env=owner).stdout)
    assert (shown["archived"], shown["tags"]) == (False, {"stage": "dev"})
    audit = json.loads(
        run_kiln("audit", "--json", env={**owner, "KILN_TOKEN": team.admin_token}).stdout
    )
    actions = [(a["actor"], a["action"]) for a in audit if a["object"].startswith("owned-remotely")]
    assert actions == [  # newest first
        ("olga", "environment.restore"),
        ("olga", "environment.archive"),
        ("olga", "environment.tag"),
        ("olga", "environment.register"),
    ]


def test_the_sdk_lists_whole_records_and_doctor_checks_the_server(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiln.sdk.environment import Environment
    from kiln.workspace import Workspace

    token = team.token("sally", "contributor")
    source = tmp_path / "kiln.yml"
    source.write_text(
        "name: sdk-remote\npython:\n  version: '3.11'\n  pip:\n    packages: [six==1.16.0]\n"
    )
    run_kiln("env", "register", "-f", str(source), env=_remote(team, token))
    monkeypatch.setenv("KILN_TOKEN", token)
    for key, value in team.env.items():
        monkeypatch.setenv(key, value)
    found = Environment.list(Workspace(team.url))
    assert found["sdk-remote"].python.conda_dependencies.pip_packages == ["six==1.16.0"]
    assert "Kiln-inference-py311" in found  # curated ones are listed too, as locally

    doctor = json.loads(run_kiln("doctor", "--json", env=_remote(team, token), check=False).stdout)
    [workspace] = [c for c in doctor if c["name"] == "workspace"]
    assert workspace["ok"] and "signed in as sally, contributor" in workspace["detail"]
    down = _remote(team, token)
    down["KILN_WORKSPACE"] = "http://127.0.0.1:9"
    failed = json.loads(run_kiln("doctor", "--json", env=down, check=False).stdout)
    [workspace] = [c for c in failed if c["name"] == "workspace"]
    assert not workspace["ok"] and "cannot reach the Kiln server" in workspace["detail"]


def test_image_outdated_reads_the_servers_locks(team: Team, tmp_path: Path) -> None:
    """No version of this workspace pins a base image yet: nothing is outdated, and the command
    asks the server (it used to need a local registry)."""
    reader = _remote(team, team.token("otto-reader", "reader"))
    found = run_kiln("image", "outdated", "--json", env=reader)
    assert json.loads(found.stdout) == []
