"""The SDK's environments take a git URL as their build context: its digests need the ref's
commit, which the SDK resolves (here from a repository on this machine, file://)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.errors import InvalidDefinition
from kiln.sdk.environment import Environment
from kilntesting.gitserver import git


def test_an_sdk_environment_with_a_git_context_gets_the_refs_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "Dockerfile").write_text("FROM scratch\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "one", cwd=repo)
    env = Environment("from-git")

    env.docker.build_context = f"{repo.as_uri()}#main"

    assert env.definition.docker.build_context_commit == git("rev-parse", "HEAD", cwd=repo)
    assert len(env.build_hash) == 64
    with pytest.raises(InvalidDefinition, match="carries a user name, password or token"):
        env.docker.build_context = "https://bob:hunter2-secret@h.example/r.git"
