"""A git build context registered on a team server (KILN_WORKSPACE=http://HOST:PORT): it
carries no local files, so the server takes it, with the commit its client resolved (the
client builds, with its own access to the repository); a build context folder travels to the
server's artifact store instead, and a folder sent straight to the API without it is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kilntesting.cli import run_kiln
from kilntesting.gitserver import GitServer, git_server
from kilntesting.teamserver import Team


@pytest.fixture
def served(tmp_path: Path) -> Iterator[GitServer]:
    with git_server(tmp_path / "git") as server:
        yield server


def test_a_git_context_registers_on_a_server_with_its_commit_and_a_folder_with_its_files(
    team: Team, tmp_path: Path, served: GitServer
) -> None:
    name = f"remote-git-{team.database_url is not None}"
    commit = served.commit(served.repository("app"), {"Dockerfile": "FROM scratch\n"})
    token = team.token("gil", "contributor")
    env = {**team.env, "KILN_WORKSPACE": team.url, "KILN_TOKEN": token}
    docker = {"build_context": f"{served.url_of('app')}#main"}
    source = tmp_path / "git.yml"
    source.write_text(yaml.safe_dump({"name": name, "python": {"user_managed": True}, "docker": docker}))  # fmt: skip
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    folder = tmp_path / "folder.yml"
    folder.write_text(yaml.safe_dump({"name": name, "docker": {"build_context": "ctx"}}))

    run_kiln("env", "register", "-f", str(source), env=env)
    uploaded = json.loads(run_kiln("env", "register", "-f", str(folder), "--json", env=env).stdout)
    bare = {"name": f"{name}-bare", "docker": {"build_context": "ctx"}}
    refused = team.call("POST", "/api/v1/environments", token, json=bare)
    # Sent without a commit (straight to the API): the server resolves the ref itself.
    sent = {"name": f"{name}-api", "python": {"user_managed": True}, "docker": docker}
    answer = team.call("POST", "/api/v1/environments", token, json=sent)

    shown = json.loads(run_kiln("env", "show", f"{name}:1", "--json", env=env).stdout)
    assert shown["definition"]["docker"]["build_context_commit"] == commit
    assert uploaded["version"] == "2"
    second = json.loads(run_kiln("env", "show", f"{name}:2", "--json", env=env).stdout)
    assert second["definition"]["docker"]["build_context"] == "ctx"
    assert refused.status_code == 422
    assert "build_context_digest` is missing; register with the kiln client" in refused.text
    assert answer.status_code == 201, answer.text
    detail = team.call("GET", f"/api/v1/environments/{name}-api", token).json()
    assert detail["definition"]["docker"]["build_context_commit"] == commit
