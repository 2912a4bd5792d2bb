"""The cache on disk: listing with sizes that count shared files once, least-recently-used
garbage collection that never removes what a live process holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from kiln.builds import Built, ensure_built
from kiln.cache import Cache, select_for_gc
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, definition, register
from kilntesting.cli import KILN, run_kiln

BIG = {"weights.bin": bytes(3_000_000)}  # 3 MB installed, a few KB as a wheel


def _two_builds(workspace: Workspace, index: PackageIndex) -> tuple[Built, Built]:
    index.publish("shared-big", "1.0", data=BIG)
    index.publish("alpha", "1.0", requires=["shared-big"])
    index.publish("beta", "1.0", requires=["shared-big"])
    alpha = ensure_built(workspace, register(workspace, definition("alpha", ["alpha"], index.url)))
    beta = ensure_built(workspace, register(workspace, definition("beta", ["beta"], index.url)))
    os.utime(alpha.path / ".kiln-ready", (1_000_000_000, 1_000_000_000))  # alpha: used long ago
    return alpha, beta


def _wait_for_reference(folder: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not (folder.is_dir() and any(folder.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)


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
    assert (alpha.path / "lib/python3.11/site-packages/shared_big/weights.bin").stat().st_nlink > 1

    with cache.hold(beta.key):
        chosen = select_for_gc(cache.entries(), max_size=0, older_than=None)
        assert [e.key for e in chosen] == [alpha.key]
        assert [e.holders for e in cache.entries()] == [0, 1]
        assert not cache.remove(beta.key)

    # A reference left by a process that died protects nothing; a running `kiln env exec`
    # protects the environment it runs in.
    cache.add_reference(alpha.key, pid=_dead_pid())
    (cache_dir / "refs" / alpha.key / "stray-file").touch()  # not a reference: ignored
    running = subprocess.Popen(
        [*KILN, "env", "exec", "beta", "--", "python", "-c", "import time; time.sleep(60)"],
        env={**os.environ, **cli_env},
    )
    try:
        _wait_for_reference(cache_dir / "refs" / beta.key, running)

        dry = run_kiln("cache", "gc", "--max-size", "0", "--dry-run", "--json", env=cli_env)
        assert json.loads(dry.stdout)["removed"] == [alpha.key]
        assert cache.marker(alpha.key) is not None and cache.marker(beta.key) is not None

        done = run_kiln("cache", "gc", "--max-size", "0", "--json", env=cli_env)
        assert json.loads(done.stdout)["removed"] == [alpha.key]
        assert not alpha.path.exists()
        assert not (cache_dir / "refs" / alpha.key).exists()
        assert cache.marker(beta.key) is not None
        assert running.poll() is None  # still running, in an environment that is still there
    finally:
        running.kill()
        running.wait()
    check = [str(beta.interpreter), "-c", "import beta, shared_big"]
    assert subprocess.run(check, check=False).returncode == 0

    verified = json.loads(run_kiln("cache", "verify", "--json", env=cli_env).stdout)
    assert verified == [{"key": beta.key, "healthy": True, "problem": None}]
    # A package deleted from under a build: verify says so and exits non-zero.
    shutil.rmtree(beta.path / "lib/python3.11/site-packages/beta")
    broken = run_kiln("cache", "verify", env=cli_env, check=False)
    assert broken.returncode == 1
    assert "BROKEN: beta 1.0 lacks 1 of its files: beta/__init__.py" in broken.stdout


def test_gc_by_age_keeps_recent_builds(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    package_index.publish("alpha", "1.0")
    package_index.publish("beta", "1.0")
    old = ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("alpha", ["alpha"], package_index.url)),
    )
    new = ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("beta", ["beta"], package_index.url)),
    )
    cache = Cache(cache_dir)
    now = (cache_dir / "envs" / new.key / ".kiln-ready").stat().st_mtime
    os.utime(old.path / ".kiln-ready", (now - 3 * 86400, now - 3 * 86400))

    chosen = select_for_gc(cache.entries(), max_size=None, older_than=86400, now=now)
    assert [e.key for e in chosen] == [old.key]
    # A reuse counts as a use: the old one is no longer old.
    assert not ensure_built(sqlite_workspace, old.record).built_now
    assert select_for_gc(cache.entries(), max_size=None, older_than=86400) == []
