"""The package caches Kiln keeps beside its built environments, and reclaiming them.

Under the cache root: uv's cache (``uv``), rattler's package and repodata caches
(``conda-pkgs``, ``conda-repodata``), local wheels staged from the artifact store (``wheels``)
and shared bytecode (``bytecode``). Environments hard-link their files from these, so removing a
cached file never breaks an environment; it only makes the next build fetch or compile it again.

Builds hold a shared lock on them (``in_use``); ``kiln cache gc`` reclaims only when it gets the
exclusive lock at once, so it never waits for a build and never pulls a file from under one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from kiln.builders.bytecode import Inode
from kiln.builders.bytecode import prune as prune_bytecode
from kiln.filelocks import held

UV = "uv"
CONDA_PKGS = "conda-pkgs"
CONDA_REPODATA = "conda-repodata"
WHEELS = "wheels"
BYTECODE = "bytecode"
REPODATA_MAX_AGE = 7 * 86400.0  # channel indexes unused this long are fetched again if needed
_LOCK = "package-caches.lock"


@contextlib.contextmanager
def in_use(root: Path) -> Iterator[None]:
    """Held by a build while it reads the package caches (many builds at once)."""
    with held(root / "locks" / _LOCK, shared=True):
        yield


def usage(path: Path) -> int:
    """Bytes allocated under ``path``, each inode once."""
    from kiln.cache import disk_usage

    if not path.exists():
        return 0
    return disk_usage(path) if path.is_dir() else path.lstat().st_blocks * 512


def links(folders: list[Path]) -> Counter[Inode]:
    """How many hard links to each file are under ``folders``."""
    counts: Counter[Inode] = Counter()
    for folder in folders:
        for base, _dirs, files in os.walk(folder):
            for name in files:
                info = os.lstat(os.path.join(base, name))  # noqa: PTH118 - hot loop
                counts[info.st_dev, info.st_ino] += 1
    return counts


def _only_here(folder: Path, leaving: Counter[Inode]) -> bool:
    """No regular file under ``folder`` is hard-linked from anywhere else (an environment)
    but from the folders ``leaving`` counts."""
    for base, _dirs, files in os.walk(folder):
        for name in files:
            info = os.lstat(os.path.join(base, name))  # noqa: PTH118 - hot loop
            if info.st_nlink - leaving[info.st_dev, info.st_ino] > 1:
                return False
    return True


def _remove(path: Path, dry_run: bool) -> int:
    size = usage(path)
    if not dry_run:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return size


def _conda_packages(folder: Path, dry_run: bool, leaving: Counter[Inode]) -> int:
    """Extracted packages no environment links, with their downloaded archives."""
    freed = 0
    if not folder.is_dir():
        return 0
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.name.startswith(".") and _only_here(entry, leaving):
            freed += _remove(entry, dry_run)
            for suffix in (".conda", ".tar.bz2"):
                freed += _remove(folder / f"{entry.name}{suffix}", dry_run)
    return freed


def _repodata(folder: Path, dry_run: bool, now: float) -> int:
    freed = 0
    for path in folder.rglob("*") if folder.is_dir() else []:
        if path.is_file() and now - path.stat().st_mtime > REPODATA_MAX_AGE:
            freed += _remove(path, dry_run)
    return freed


def _wheels(folder: Path, locks: str, dry_run: bool) -> int:
    """Staged wheels (``<sha256>/<file>``) that no remaining environment's lock names."""
    freed = 0
    for staged in sorted(folder.iterdir()) if folder.is_dir() else []:
        if staged.is_dir() and len(staged.name) == 64 and staged.name not in locks:
            freed += _remove(staged, dry_run)
    return freed


def _uv(root: Path, dry_run: bool) -> int | None:
    """``uv cache prune`` on Kiln's uv cache; None in a dry run (uv cannot say beforehand)."""
    from kiln.builders.uvtool import uv_binary, uv_environment

    folder = root / UV
    if dry_run or not folder.is_dir():
        return None if dry_run else 0
    before = usage(folder)
    subprocess.run(
        [uv_binary(), "cache", "prune"],
        capture_output=True,
        env=uv_environment(folder),
        check=True,
    )
    return max(before - usage(folder), 0)


def reclaim(
    root: Path, kept: list[Path], *, dry_run: bool, dropped: Sequence[Path] = ()
) -> dict[str, int | None] | None:
    """Bytes freed in each package cache, or None when a build is using them right now.

    ``kept``: the environments that stay (their locks keep staged wheels). In a dry run,
    ``dropped`` are the environments that would be removed first, and the numbers are what
    would be freed then; uv's part is not estimated (None)."""
    with held(root / "locks" / _LOCK, wait=False) as exclusive:
        if not exclusive:
            return None
        leaving = links(list(dropped)) if dry_run else Counter()
        locks = "".join(
            lock.read_text(encoding="utf-8", errors="replace")
            for env in kept
            for lock in env.glob("kiln-lock.*")
        )
        return {
            UV: _uv(root, dry_run),
            CONDA_PKGS: _conda_packages(root / CONDA_PKGS, dry_run, leaving),
            CONDA_REPODATA: _repodata(root / CONDA_REPODATA, dry_run, time.time()),
            WHEELS: _wheels(root / WHEELS, locks, dry_run),
            BYTECODE: prune_bytecode(root / BYTECODE, dry_run=dry_run, leaving=leaving),
        }
