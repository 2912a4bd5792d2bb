"""Many processes at once: one build per environment, different environments in parallel, and
a build killed midway leaves nothing usable behind and nothing that blocks the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kiln.builds import ensure_built
from kiln.cache import Cache
from kiln.workspace import Workspace
from kilntesting.builds import (
    PackageIndex,
    build_rows,
    definition,
    installed_versions,
    lock_generations,
    register,
    wait_for,
)
from kilntesting.cli import run_kiln

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from kiln.builds import ensure_built
    from kiln import catalog
    from kiln.workspace import Workspace
    folder, name, index = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    ws = Workspace(folder / "project")
    record = catalog.get(ws, name)  # connect before the start signal: all start together
    (folder / f"ready-{index}").touch()
    while not (folder / "go").exists():
        time.sleep(0.005)
    built = ensure_built(ws, record)
    print(json.dumps({"interpreter": str(built.interpreter), "built_now": built.built_now}))
    """
)


def _start(
    folder: Path, name: str, index: int, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(folder), name, str(index)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group: a kill takes its uv children too
    )


def _release(folder: Path, workers: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    deadline = time.monotonic() + 60
    while len(list(folder.glob("ready-*"))) < len(workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    (folder / "go").touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_eight_processes_asking_at_once_cause_exactly_one_build(
    workspace: Workspace, package_index: PackageIndex, cache_dir: Path, tmp_path: Path
) -> None:
    package_index.publish("tiny-dep", "1.0")
    package_index.publish("demo", "1.0", requires=["tiny-dep"])
    record = register(workspace, definition("demo", ["demo"], package_index.url))

    results = _release(tmp_path, [_start(tmp_path, "demo", i) for i in range(8)])

    assert len({r["interpreter"] for r in results}) == 1
    assert sorted(r["built_now"] for r in results) == [False] * 7 + [True]
    assert [r["status"] for r in build_rows(workspace, record.build_hash)] == ["succeeded"]
    assert lock_generations(workspace, record.build_hash) == [1]
    # Resolved once and installed once: demo's index page is read by the resolution and at
    # most once more by the install (which tries uv's cache first).
    assert 1 <= package_index.requests.count("/simple/demo/") <= 2
    assert [p.name for p in (cache_dir / "envs").iterdir()] == [
        Path(str(results[0]["interpreter"])).parents[1].name
    ]
    interpreter = Path(str(results[0]["interpreter"]))
    assert installed_versions(interpreter) == {"demo": "1.0", "tiny-dep": "1.0"}


def test_machines_sharing_a_workspace_resolving_at_once_store_one_lock(
    workspace: Workspace, package_index: PackageIndex, tmp_path: Path
) -> None:
    """Each process has its own cache, as separate machines would: nothing machine-local
    serializes their first resolution, only the registry does."""
    package_index.publish("demo", "1.0")
    record = register(workspace, definition("demo", ["demo"], package_index.url))
    caches = [tmp_path / f"machine-{i}" for i in range(4)]

    workers = [
        _start(tmp_path, "demo", i, {"KILN_CACHE_DIR": str(c)}) for i, c in enumerate(caches)
    ]
    results = _release(tmp_path, workers)

    assert lock_generations(workspace, record.build_hash) == [1]
    assert all(r["built_now"] for r in results)  # each machine builds its own copy...
    digests = {Cache(c).entries()[0].marker["lock_digest"] for c in caches}
    assert len(digests) == 1  # ...of the one stored lock
    rows = build_rows(workspace, record.build_hash)
    assert [r["status"] for r in rows] == ["succeeded"] * 4


def test_different_environments_build_in_parallel(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path, tmp_path: Path
) -> None:
    package_index.publish("alpha", "1.0")
    package_index.publish("beta", "1.0")
    alpha = register(sqlite_workspace, definition("alpha", ["alpha"], package_index.url))
    beta = register(sqlite_workspace, definition("beta", ["beta"], package_index.url))
    package_index.delay = 0.4  # every request: each build takes a couple of seconds

    _release(tmp_path, [_start(tmp_path, "alpha", 0), _start(tmp_path, "beta", 1)])

    spans = []
    for record in (alpha, beta):
        (row,) = build_rows(sqlite_workspace, record.build_hash)
        assert row["status"] == "succeeded"
        start = row["started_at"].timestamp()
        spans.append((start, start + row["duration_ms"] / 1000))
    (start_a, end_a), (start_b, end_b) = spans
    # Overlapping spans: neither waited for the other to finish.
    assert max(start_a, start_b) < min(end_a, end_b), spans


def test_a_killed_build_leaves_nothing_usable_and_the_next_build_cleans_up(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package_index.publish("demo", "1.0")
    record = register(sqlite_workspace, definition("demo", ["demo"], package_index.url))
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "first-cache"))
    ensure_built(sqlite_workspace, record)  # stores the lock; the killed build only installs
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("KILN_CACHE_DIR", str(cache_dir))
    package_index.delay, package_index.delay_suffix = 30.0, ".whl"  # the download hangs

    worker = _start(tmp_path, "demo", 0)
    (tmp_path / "go").touch()
    staging: list[Path] = []

    def installing() -> bool:
        staging[:] = [p for p in (cache_dir / "tmp").glob(f"*.{worker.pid}.*") if p.is_dir()]
        return bool(staging) and (staging[0] / "pyvenv.cfg").exists()

    try:
        wait_for(installing, "the build to start installing")
        wait_for(lambda: any(r.endswith(".whl") for r in package_index.requests), "a download")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.communicate(timeout=30)
    key = staging[0].name.split(".")[0]
    cache = Cache(cache_dir)

    assert list((cache_dir / "envs").iterdir()) == []
    assert cache.marker(key) is None
    assert staging[0].exists()  # the leftover is there, and never used

    package_index.delay = 0.0
    built = ensure_built(sqlite_workspace, record)

    assert built.built_now and built.key == key
    assert installed_versions(built.interpreter) == {"demo": "1.0"}
    assert not staging[0].exists()
    leftovers = list((cache_dir / "tmp").iterdir())
    assert all(f".{worker.pid}." in p.name for p in leftovers)  # at most the dead one's log

    # Leftovers of dead builders are removed by gc; a live builder's are not touched.
    dead = cache_dir / "tmp" / f"{'0' * 32}.{worker.pid}.deadbeef"
    live = cache_dir / "tmp" / f"{'1' * 32}.{os.getpid()}.cafef00d"
    dead.mkdir()
    live.mkdir()
    run_kiln(
        "cache", "gc", "--older-than", "30d", env={"KILN_WORKSPACE": str(tmp_path / "project")}
    )
    assert sorted(p.name for p in (cache_dir / "tmp").iterdir()) == [live.name]
    assert cache.marker(key) is not None  # gc --older-than 30d keeps a fresh build
