"""The cache on disk: listing with sizes that count shared files once, least-recently-used
garbage collection that never removes what a live process holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import PackageIndex, definition, register, run_kiln

from kiln.builds import Built, ensure_built
from kiln.cache import Cache, select_for_gc
from kiln.workspace import Workspace

BIG = "DATA = '" + "x" * 3_000_000 + "'"  # 3 MB installed, a few KB as a wheel


def _two_builds(workspace: Workspace, index: PackageIndex) -> tuple[Built, Built]:
    index.publish("shared-big", "1.0", body=BIG)
    index.publish("alpha", "1.0", requires=["shared-big"])
    index.publish("beta", "1.0", requires=["shared-big"])
    alpha = ensure_built(workspace, register(workspace, definition("alpha", ["alpha"], index.url)))
    beta = ensure_built(workspace, register(workspace, definition("beta", ["beta"], index.url)))
    os.utime(alpha.path / ".kiln-ready", (1_000_000_000, 1_000_000_000))  # alpha: used long ago
    return alpha, beta


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_gc_removes_least_recently_used_and_never_what_is_held(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    cache_dir: Path,
    cli_env: dict[str, str],
) -> None:
    alpha, beta = _two_builds(sqlite_workspace, package_index)
    cache = Cache(cache_dir)

    listed = json.loads(run_kiln("cache", "list", "--json", env=cli_env).stdout)
    assert [r["key"] for r in listed] == [alpha.key, beta.key]  # least recently used first
    assert [r["environments"] for r in listed] == [["alpha:1"], ["beta:1"]]
    sizes = [r["size_bytes"] for r in listed]
    assert min(sizes) > 0
    single = max(sizes)
    assert single > 3_000_000
    # Both hold the 3 MB module, hard-linked from uv's cache: counted once in the listing.
    assert sum(sizes) < 1.5 * single
    assert (alpha.path / "lib/python3.11/site-packages/shared_big/__init__.py").stat().st_nlink > 1

    with cache.hold(beta.key):
        chosen = select_for_gc(cache.entries(), max_size=0, older_than=None)
        assert [e.key for e in chosen] == [alpha.key]
        assert [e.holders for e in cache.entries()] == [0, 1]
        assert not cache.remove(beta.key)

    # A reference left by a process that died protects nothing.
    cache.add_reference(alpha.key, pid=_dead_pid())
    cache.add_reference(beta.key)  # this (live) process holds beta

    dry = run_kiln("cache", "gc", "--max-size", "0", "--dry-run", "--json", env=cli_env)
    assert json.loads(dry.stdout)["removed"] == [alpha.key]
    assert cache.marker(alpha.key) is not None and cache.marker(beta.key) is not None

    done = json.loads(run_kiln("cache", "gc", "--max-size", "0", "--json", env=cli_env).stdout)
    assert done["removed"] == [alpha.key] and done["freed_bytes"] > 0
    assert not alpha.path.exists()
    assert cache.marker(beta.key) is not None
    assert (
        subprocess.run(
            [str(beta.interpreter), "-c", "import beta, shared_big"], check=False
        ).returncode
        == 0
    )

    # Removing one build never breaks another that shares its files.
    rebuilt = ensure_built(sqlite_workspace, alpha.record)
    assert rebuilt.built_now and rebuilt.key == alpha.key


def test_gc_by_age_and_verify(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    cache_dir: Path,
    cli_env: dict[str, str],
) -> None:
    alpha, beta = _two_builds(sqlite_workspace, package_index)

    aged = json.loads(run_kiln("cache", "gc", "--older-than", "1d", "--json", env=cli_env).stdout)
    assert aged["removed"] == [alpha.key]
    assert beta.path.exists()

    verified = json.loads(run_kiln("cache", "verify", "--json", env=cli_env).stdout)
    assert verified == [{"key": beta.key, "healthy": True, "problem": None}]
    # A package deleted from under the build: verify says so and exits non-zero.
    for item in (beta.path / "lib/python3.11/site-packages").glob("beta*"):
        if item.is_dir():
            import shutil

            shutil.rmtree(item)
    broken = run_kiln("cache", "verify", env=cli_env, check=False)
    assert broken.returncode == 1
    assert "BROKEN" in broken.stdout and "beta" in broken.stdout
