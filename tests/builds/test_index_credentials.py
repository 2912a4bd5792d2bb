"""Credentials for a private index come from an environment variable the definition names, and
never land in anything Kiln writes or prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.builders.base import BuildError
from kiln.builds import ensure_built
from kiln.workspace import Workspace
from kilntesting.builds import (
    PackageIndex,
    definition,
    every_byte_under,
    installed_versions,
    register,
)
from kilntesting.cli import run_kiln

TOKEN = "s3cr3t-Token-7f1d9a"


def test_a_private_index_token_is_used_and_written_nowhere(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    cache_dir: Path,
    cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    package_index.credentials = ("builder", TOKEN)
    package_index.publish("tiny-dep", "1.0")
    package_index.publish("private-pkg", "1.0", requires=["tiny-dep"])
    url = package_index.url.replace("http://", "http://builder:${KILN_INDEX_TOKEN}@")
    record = register(sqlite_workspace, definition("private", ["private-pkg"], url))

    monkeypatch.delenv("KILN_INDEX_TOKEN", raising=False)
    with pytest.raises(BuildError, match="export KILN_INDEX_TOKEN"):
        ensure_built(sqlite_workspace, record)

    monkeypatch.setenv("KILN_INDEX_TOKEN", "wrong-token")
    with pytest.raises(BuildError) as refused:
        ensure_built(sqlite_workspace, record, retry=True)
    assert "401" in str(refused.value) or "nauthorized" in str(refused.value)
    assert "wrong-token" not in str(refused.value)

    monkeypatch.setenv("KILN_INDEX_TOKEN", TOKEN)
    built = ensure_built(sqlite_workspace, record, retry=True)
    assert installed_versions(built.interpreter) == {"private-pkg": "1.0", "tiny-dep": "1.0"}
    assert "${KILN_INDEX_TOKEN}" in built.lock.lock_text or "builder" not in built.lock.lock_text

    env = {**cli_env, "KILN_INDEX_TOKEN": TOKEN}
    printed = [
        run_kiln("env", "build", "private", "--json", env=env),
        run_kiln("env", "logs", "private", env=env),
        run_kiln("env", "show", "private", "--build", env=env),
        run_kiln("env", "show", "private", "--build", "--json", env=env),
        run_kiln("env", "lock", "private", env=env),
        run_kiln("cache", "list", "--json", env=env),
    ]
    for result in printed:
        assert TOKEN not in result.stdout + result.stderr, result.args
    # The package really came through the authenticated index.
    assert "private-pkg" in printed[4].stdout

    # Every byte Kiln wrote: the workspace (registry.db, artifacts, config) and the cache,
    # except uv's own package cache (uv's business, like pip's cache).
    written = every_byte_under(sqlite_workspace.path) + every_byte_under(
        cache_dir, skip=[cache_dir / "uv"]
    )
    assert len(written) > 100_000  # the environment, the log and the database are in there
    assert TOKEN.encode() not in written
    assert b"wrong-token" not in written  # nor the one that was refused
