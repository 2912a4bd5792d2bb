"""What Kiln creates outside a project's files (the build cache, its locks, logs, markers and
references) is readable by its owner only, whatever the umask: real builds by the real CLI
under a permissive umask, then every mode checked."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.private import private_folder
from kilntesting.builds import PackageIndex
from kilntesting.cli import run_kiln


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """This process's umask for the test (the CLI's subprocesses inherit it)."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _reachable_by_others(path: Path, root: Path) -> bool:
    """True when another user could read ``path``: every folder from ``root`` down lets them
    through and the path itself lets them read."""
    folders = [root, *(p for p in path.parents if root in p.parents)]
    passable = all(_mode(f) & 0o011 for f in folders)
    return passable and bool(_mode(path) & 0o044)


def test_private_folder_makes_missing_folders_0700_and_keeps_existing_ones(
    umask: int, tmp_path: Path
) -> None:
    (tmp_path / "mine").mkdir(mode=0o755)
    (tmp_path / "mine").chmod(0o755)
    made = private_folder(tmp_path / "mine" / "a" / "b")
    assert made.is_dir()
    assert _mode(tmp_path / "mine" / "a") == _mode(made) == 0o700
    assert _mode(tmp_path / "mine") == 0o755  # the user's folder keeps what they gave it


def test_the_build_cache_and_what_kiln_writes_in_it_are_private(
    umask: int,
    cache_dir: Path,
    cli_env: dict[str, str],
    package_index: PackageIndex,
    tmp_path: Path,
) -> None:
    assert not cache_dir.exists()  # made by Kiln, with its parents' modes left alone
    run_kiln("init", cli_env["KILN_WORKSPACE"], env=cli_env)
    source = tmp_path / "src"
    source.mkdir()
    (source / "kiln.yaml").write_text("name: py\npython:\n  version: '3.11'\n")
    run_kiln("env", "register", "-d", str(source), env=cli_env)
    (source / "kiln.yaml").write_text(
        "name: broken\npython:\n  version: '3.11'\n"
        f"  pip:\n    index_url: {package_index.url}\n    packages: [not-published]\n"
    )
    run_kiln("env", "register", "-d", str(source), env=cli_env)

    run_kiln("env", "build", "py", env=cli_env)
    failed = run_kiln("env", "build", "broken", env=cli_env, check=False)
    assert failed.returncode != 0 and "not-published" in failed.stderr
    # While a process holds a build, its reference file exists: the held process reports it.
    code = (
        "import glob, os, stat; "
        "print([oct(stat.S_IMODE(os.stat(p).st_mode)) for p in "
        "glob.glob(os.environ['KILN_CACHE_DIR'] + '/refs/*/*')])"
    )
    held = run_kiln("env", "exec", "py", "--", "python", "-c", code, env=cli_env)
    assert json.loads(held.stdout.strip().replace("'", '"')) == ["0o600"]

    assert _mode(cache_dir) == 0o700
    for folder in ("envs", "tmp", "locks", "failed", "refs", "uv", "by-build", "bytecode"):
        assert _mode(cache_dir / folder) == 0o700, folder
    kiln_files = {
        "locks": list((cache_dir / "locks").glob("*.lock")),
        "failures": list((cache_dir / "failed").glob("*.json")),
        "pointers": list((cache_dir / "by-build").glob("*.json")),
        "markers": list((cache_dir / "envs").glob("*/.kiln-ready")),
    }
    assert all(kiln_files.values()), kiln_files
    modes = {oct(_mode(p)) for found in kiln_files.values() for p in found}
    assert modes == {"0o600"}
    everything = list(cache_dir.rglob("*"))
    # uv's files keep the modes uv gives them (a venv's pyvenv.cfg is 0644 under umask 022):
    # the folders Kiln made around them are what keeps other users out.
    assert any(_mode(p) & 0o044 for p in everything if p.is_file())
    assert [p for p in everything if _reachable_by_others(p, cache_dir)] == []
