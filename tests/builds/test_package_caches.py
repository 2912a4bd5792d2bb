"""`kiln cache gc` reclaims the package caches under the cache root (uv's cache, staged wheels,
shared bytecode, rattler's caches) after real builds, says how much, honours --dry-run, and
leaves them alone while a build is using them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from test_local_wheels import register_folder

from kiln.builders import packagecaches
from kiln.builds import ensure_built
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, definition, register, wait_for_bytecode
from kilntesting.cli import run_kiln


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _gc(cli_env: dict[str, str], *extra: str) -> dict[str, object]:
    out = run_kiln("cache", "gc", "--older-than", "1d", "--json", *extra, env=cli_env).stdout
    return dict(json.loads(out))


def test_gc_reclaims_package_caches_no_build_needs(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    cache_dir: Path,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    package_index.publish("demo-dep", "1.0")
    plain = ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("plain", ["demo-dep"], package_index.url)),
    )
    local = ensure_built(
        sqlite_workspace, register_folder(sqlite_workspace, tmp_path / "src", package_index.url)
    )
    wait_for_bytecode(cache_dir)  # compiled after the builds
    stored_pyc = _files(cache_dir / "bytecode")
    staged = _files(cache_dir / "wheels")
    assert stored_pyc and staged

    # While both builds exist, what they use stays (a dry run reports, removes nothing).
    kept = _gc(cli_env, "--dry-run")
    assert kept["removed"] == [] and kept["dry_run"] is True
    assert kept["package_caches"] == {
        "uv": None,  # uv cannot say beforehand
        "conda-pkgs": 0,
        "conda-repodata": 0,
        "wheels": 0,
        "bytecode": 0,
    }
    assert _files(cache_dir / "bytecode") == stored_pyc

    for built in (plain, local):  # both unused for long
        os.utime(built.path / ".kiln-ready", (1_000_000_000, 1_000_000_000))
    # Without a policy, no build goes, however old: only what no build uses.
    bare = json.loads(run_kiln("cache", "gc", "--dry-run", "--json", env=cli_env).stdout)
    assert bare["removed"] == [] and bare["package_caches"]["bytecode"] == 0
    dry = _gc(cli_env, "--dry-run")
    assert sorted(dry["removed"]) == sorted([plain.key, local.key])  # type: ignore[arg-type]
    caches = dry["package_caches"]
    assert isinstance(caches, dict) and caches["wheels"] > 0 and caches["bytecode"] > 0
    assert _files(cache_dir / "bytecode") == stored_pyc and _files(cache_dir / "wheels") == staged
    assert plain.path.exists()

    done = _gc(cli_env)
    caches = done["package_caches"]
    assert isinstance(caches, dict)
    assert caches["wheels"] == dry["package_caches"]["wheels"]  # type: ignore[index]
    assert caches["bytecode"] > 0 and isinstance(caches["uv"], int)
    assert done["freed_bytes"] == done["builds_freed_bytes"] + sum(caches.values())  # type: ignore[operator]
    assert _files(cache_dir / "bytecode") == [] and _files(cache_dir / "wheels") == []
    assert not plain.path.exists() and not local.path.exists()

    # Everything comes back on the next build.
    again = ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("plain", ["demo-dep"], package_index.url)),
    )
    wait_for_bytecode(cache_dir)
    assert again.built_now and _files(cache_dir / "bytecode")

    text = run_kiln("cache", "gc", "--older-than", "1d", env=cli_env).stdout
    assert "Package caches freed" in text and "bytecode" in text


def test_gc_leaves_package_caches_alone_while_a_build_uses_them(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    cache_dir: Path,
    cli_env: dict[str, str],
) -> None:
    package_index.publish("demo-dep", "1.0")
    built = ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("plain", ["demo-dep"], package_index.url)),
    )
    os.utime(built.path / ".kiln-ready", (1_000_000_000, 1_000_000_000))
    wait_for_bytecode(cache_dir)
    stored = _files(cache_dir / "bytecode")

    with packagecaches.in_use(cache_dir):  # as ensure_built holds it
        result = _gc(cli_env)
        text = run_kiln("cache", "gc", "--older-than", "1d", env=cli_env).stdout

    assert result["removed"] == [built.key] and result["package_caches"] is None
    assert "in use by a running build" in text
    assert _files(cache_dir / "bytecode") == stored  # its links are gone, the files are not
