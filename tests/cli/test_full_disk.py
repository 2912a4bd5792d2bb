"""A full disk is one clear line (exit 5) and writes nothing: tested on a real, small tmpfs
(mounting needs root, which CI has)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kilntesting.cli import run_kiln

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI is)")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> None:
    """Take every free byte of ``disk``."""
    with (disk / "ballast").open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


@ROOT_ONLY
def test_register_on_a_full_disk_says_so_and_writes_nothing(small_disk: Path) -> None:
    project = small_disk / "project"
    run_kiln("init", str(project))
    run_kiln("env", "scaffold", "-n", "demo", "-d", "envdir", cwd=project)
    run_kiln("env", "register", "-d", "envdir", cwd=project)
    (project / "envdir" / "kiln.yaml").write_text(
        (project / "envdir" / "kiln.yaml").read_text().replace("numpy==2.4.6", "numpy==2.4.5")
    )
    _fill(small_disk)
    result = run_kiln("env", "register", "-d", "envdir", cwd=project, check=False)
    assert result.returncode == 5, result.stderr
    [line] = result.stderr.splitlines()
    assert "is full" in line or "no space left" in line, line
    assert str(project) in line
    (small_disk / "ballast").unlink()
    listed = run_kiln("env", "list", "--all-versions", "--no-curated", "--json", cwd=project)
    assert [(e["name"], e["version"]) for e in json.loads(listed.stdout)] == [("demo", "1")]
    again = run_kiln("env", "register", "-d", "envdir", "--json", cwd=project)
    assert json.loads(again.stdout)["version"] == "2"
