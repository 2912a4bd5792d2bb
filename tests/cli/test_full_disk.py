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


@ROOT_ONLY
def test_the_standard_library_run_store_says_the_disk_is_full_too(small_disk: Path) -> None:
    """A warm `kiln run submit` records runs through sqlite3, not SQLAlchemy: the same line."""
    from kiln.errors import WorkspaceError
    from kiln.registry.readonly import immediate_transaction, open_writable

    project = small_disk / "project"
    run_kiln("init", str(project))
    registry = project / ".kiln" / "registry.db"
    connection = open_writable(registry)
    assert connection is not None
    _fill(small_disk)
    try:
        full = pytest.raises(WorkspaceError, match=f"the disk holding {registry} is full")
        with full, immediate_transaction(connection) as writer:
            for index in range(2000):
                writer.execute(
                    "INSERT INTO compute_targets (name, kind, address, created_at) "
                    "VALUES (?, 'ray', ?, 0)",
                    (f"t{index}", "ray://127.0.0.1:8265/" + "x" * 4000),
                )
        (small_disk / "ballast").unlink()
        count = connection.execute("SELECT count(*) FROM compute_targets").fetchone()[0]
        assert count == 0  # rolled back: nothing half-written
    finally:
        connection.close()
