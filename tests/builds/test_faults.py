"""Faults produced for real: the disk filling up during a build (a small tmpfs holds the cache),
and uv missing from the installation. Each gives a clear error and leaves nothing half-built."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.builders.base import BuildError
from kiln.builds import ensure_built
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, build_rows, definition, register


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 4 MiB filesystem for the build cache: a real "no space left on device"."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs and needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    monkeypatch.setenv("KILN_CACHE_DIR", str(mount / "cache"))
    try:
        yield mount / "cache"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_the_disk_filling_during_a_build(
    sqlite_workspace: Workspace, package_index: PackageIndex, small_disk: Path
) -> None:
    package_index.publish("heavy", "1.0", data={"weights.bin": os.urandom(6_000_000)})
    record = register(sqlite_workspace, definition("heavy", ["heavy==1.0"], package_index.url))
    with pytest.raises(BuildError) as caught:
        ensure_built(sqlite_workspace, record)
    message = str(caught.value)
    assert "No space left on device" in message or "not enough space" in message.lower(), message
    assert list((small_disk / "envs").iterdir()) == []  # nothing half-built looks usable
    assert [p.name for p in (small_disk / "tmp").iterdir()] == []  # the staging folder is gone
    rows = build_rows(sqlite_workspace, record.build_hash)
    assert [r["status"] for r in rows] == ["failed"] and "space" in rows[0]["error"].lower()
    print(message)
