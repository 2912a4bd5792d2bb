"""Issue 15, items 1 and 8: a lock row edited by a teammate (or corrupted) is never installed.
Every lock is checked against its digest and the definition's exact pins before a build; the
error names the lock and the fix, and ``--refresh`` recovers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import update

from kiln.buildlocks import InvalidLock
from kiln.builds import ensure_built, materialization_key
from kiln.cache import Cache
from kiln.catalog import EnvironmentRecord
from kiln.registry.engine import write_transaction
from kiln.registry.lock_queries import LockRow, get_lock
from kiln.registry.schema import locks
from kiln.workspace import Workspace
from kilntesting.builds import (
    PackageIndex,
    build_rows,
    definition,
    installed_versions,
    lock_generations,
    register,
)
from kilntesting.cli import run_kiln


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _newest(workspace: Workspace, record: EnvironmentRecord, platform: str) -> LockRow:
    with workspace.engine.connect() as connection:
        row = get_lock(connection, build_hash=record.build_hash, platform=platform)
    assert row is not None
    return row


def _edit_lock(workspace: Workspace, row: LockRow, text: str, *, digest: str | None = None) -> None:
    """What the teammate did: an UPDATE of the lock row, by hand."""
    values = {"lock_text": text} if digest is None else {"lock_text": text, "lock_digest": digest}
    with write_transaction(workspace.engine) as connection:
        connection.execute(
            update(locks)
            .where(locks.c.build_hash == row.build_hash, locks.c.generation == row.generation)
            .values(**values)
        )


@pytest.fixture
def six_env(
    workspace: Workspace, package_index: PackageIndex
) -> tuple[EnvironmentRecord, LockRow, str]:
    """An environment pinning six==1.16.0, built once; and the lock text a teammate made by
    swapping in six 1.17.0's wheel (version, file name and hash)."""
    old = package_index.publish("six", "1.16.0")
    new = package_index.publish("six", "1.17.0")
    record = register(workspace, definition("pins", ["six==1.16.0"], package_index.url))
    built = ensure_built(workspace, record)
    row = built.lock
    assert _sha256(old) in row.lock_text
    swapped = (
        row.lock_text.replace(_sha256(old), _sha256(new))
        .replace("six-1.16.0-", "six-1.17.0-")
        .replace('version = "1.16.0"', 'version = "1.17.0"')
    )
    assert swapped != row.lock_text and "1.16.0" not in swapped
    return record, row, swapped


def materialization_key_of(workspace: Workspace, record: EnvironmentRecord, row: LockRow) -> str:
    """The key the build from ``row`` has (the first build made it on the first machine)."""
    from kiln.builders import choice

    name = choice.choose(record.definition).name
    return materialization_key(name, record.build_hash, row.lock_digest, row.platform)


def _other_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "other-machine-cache"
    monkeypatch.setenv("KILN_CACHE_DIR", str(cache))
    return cache


def test_a_lock_row_edited_without_its_digest_is_refused_and_refresh_recovers(
    workspace: Workspace,
    six_env: tuple[EnvironmentRecord, LockRow, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record, row, swapped = six_env
    _edit_lock(workspace, row, swapped)
    cache = _other_machine(monkeypatch, tmp_path)
    attempts = len(build_rows(workspace, record.build_hash))

    with pytest.raises(InvalidLock) as refused:
        ensure_built(workspace, record)

    message = str(refused.value)
    assert refused.value.exit_code == 5
    assert f"build {record.build_hash[:12]} for {row.platform}, generation 1" in message
    # Nor is the edited lock handed to plain pip or uv (`kiln env lock`).
    from kiln.buildinfo import export_lock

    with pytest.raises(InvalidLock, match="was changed after it was stored"):
        export_lock(workspace, record, fmt="requirements")
    assert "was changed after it was stored" in message
    assert (
        "kiln env build pins:1 --refresh" in message or "kiln env build pins --refresh" in message
    )
    # Nothing installed on this machine, nothing recorded as built.
    assert not Cache(cache).path(materialization_key_of(workspace, record, row)).exists()
    new_rows = build_rows(workspace, record.build_hash)[attempts:]
    assert all(r["status"] == "failed" for r in new_rows)

    refreshed = ensure_built(workspace, record, refresh=True)
    assert installed_versions(refreshed.interpreter)["six"] == "1.16.0"
    assert refreshed.lock.generation == 2 and refreshed.lock.lock_text == row.lock_text
    assert lock_generations(workspace, record.build_hash) == [1, 2]
    assert not ensure_built(workspace, record).built_now  # generation 2 is the one used now


def test_a_lock_edited_with_a_matching_digest_still_must_agree_with_the_pins(
    workspace: Workspace,
    six_env: tuple[EnvironmentRecord, LockRow, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record, row, swapped = six_env
    _edit_lock(workspace, row, swapped, digest=hashlib.sha256(swapped.encode()).hexdigest())
    _other_machine(monkeypatch, tmp_path)

    with pytest.raises(InvalidLock, match=r"six==1\.16\.0 \(the lock has 1\.17\.0\)") as refused:
        ensure_built(workspace, record)
    assert "generation 1" in str(refused.value) and "--refresh" in str(refused.value)
    assert installed_versions(ensure_built(workspace, record, refresh=True).interpreter) == {
        "six": "1.16.0"
    }


def test_a_stored_generation_chosen_by_digest_is_verified_too(
    workspace: Workspace,
    six_env: tuple[EnvironmentRecord, LockRow, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record, row, swapped = six_env
    _edit_lock(workspace, row, swapped)
    _other_machine(monkeypatch, tmp_path)

    with pytest.raises(InvalidLock, match="generation 1, was changed"):
        ensure_built(workspace, record, lock_digest=row.lock_digest)
    # --refresh stores the same resolution again; the digest then finds the sound generation.
    ensure_built(workspace, record, refresh=True)
    again = ensure_built(workspace, record, lock_digest=row.lock_digest)
    assert again.lock.generation == 2
    assert installed_versions(again.interpreter)["six"] == "1.16.0"


def test_a_corrupt_lock_is_a_clear_workspace_error_at_build_and_export_never_exit_70(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    package_index.publish("six", "1.16.0")
    record = register(sqlite_workspace, definition("pins", ["six==1.16.0"], package_index.url))
    run_kiln("env", "build", "pins", env=cli_env)
    row = _newest(sqlite_workspace, record, ensure_built(sqlite_workspace, record).target.platform)
    broken = row.lock_text.replace("[[packages]]", "[[packages]", 1)
    _edit_lock(sqlite_workspace, row, broken, digest=hashlib.sha256(broken.encode()).hexdigest())

    for args in (("env", "build", "pins"), ("env", "lock", "pins")):
        result = run_kiln(*args, env=cli_env, check=False)
        assert result.returncode == 5, result.stderr
        assert "not valid TOML" in result.stderr and "--refresh" in result.stderr
        assert "Traceback" not in result.stderr
    # exec goes through the build path here (the issue saw a TOMLDecodeError there too).
    ran = run_kiln("env", "exec", "pins", "--", "python", "-c", "pass", env=cli_env, check=False)
    assert ran.returncode == 5 and "not valid TOML" in ran.stderr, ran.stderr

    run_kiln("env", "build", "pins", "--refresh", env=cli_env)
    assert run_kiln("env", "lock", "pins", env=cli_env).stdout.count("six==1.16.0") == 1
