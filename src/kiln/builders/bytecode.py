"""Bytecode shared between environments, so the health check's imports compile each file once.

Compiling on import is most of what a health check costs (``import sklearn`` compiles ~1,000
files), and uv installs no bytecode. So the health check writes bytecode into the new
environment, and afterwards each ``.pyc`` under ``site-packages`` is moved into a store keyed by
the sha256 of its source and hard-linked back: ten environments with the same packages share
one copy (disk), and the next build links the store's files in *before* its health check
(time), like uv links package files from its cache.

Safe by construction: a file is linked only when the source it would serve has that sha256 and
the mtime and size its header names (what Python validates on import), so it is exactly the
bytecode Python would have written. The path it was compiled under does not matter: Python sets
a code object's file name from where it loads the source. Python replaces a stale ``.pyc`` by an
atomic rename, never in place, so no environment can change a stored file.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

SUFFIX = ".pyc"
Inode = tuple[int, int]  # (st_dev, st_ino)


def site_packages(dest: Path) -> list[Path]:
    return sorted(dest.glob("lib/python3*/site-packages"))


def _cache_tag(site: Path) -> str:
    """``cpython-311`` for ``lib/python3.11/site-packages`` (a venv or conda prefix)."""
    return "cpython-" + site.parent.name.removeprefix("python").replace(".", "")


def _stored(store: Path, source_digest: str, rest: str) -> Path:
    return store / source_digest[:2] / f"{source_digest}.{rest}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()  # sources are small


def _header_matches(pyc: Path, source: os.stat_result) -> bool:
    """The ``.pyc`` is a timestamp one for a source of this mtime and size."""
    try:
        with pyc.open("rb") as handle:
            header = handle.read(16)
    except OSError:
        return False
    if len(header) < 16 or int.from_bytes(header[4:8], "little") != 0:
        return False
    mtime = int.from_bytes(header[8:12], "little")
    size = int.from_bytes(header[12:16], "little")
    return mtime == int(source.st_mtime) & 0xFFFFFFFF and size == source.st_size & 0xFFFFFFFF


def _link(source: Path, destination: Path) -> None:
    """Hard-link ``source`` at ``destination`` atomically (replacing what is there)."""
    temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}")
    os.link(source, temporary)
    try:
        os.replace(temporary, destination)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def _recorded_sources(site: Path) -> Iterator[tuple[Path, str]]:
    """(source file, sha256 hex its RECORD claims) for each ``.py`` file installed in ``site``."""
    for record in site.glob("*.dist-info/RECORD"):
        try:
            lines = record.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            path, _, rest = line.partition(",")
            claimed, _, _ = rest.partition(",")
            if path.endswith(".py") and not path.startswith("..") and claimed[:7] == "sha256=":
                raw = base64.urlsafe_b64decode(claimed[7:] + "=" * (-len(claimed[7:]) % 4))
                yield site / path, raw.hex()


def link_known(dest: Path, store: Path) -> int:
    """Link the store's bytecode for the sources installed in ``dest``; returns how many."""
    linked = 0
    for site in site_packages(dest):
        rest = f"{_cache_tag(site)}{SUFFIX}"
        for source, claimed in _recorded_sources(site):
            stored = _stored(store, claimed, rest)
            try:
                info = source.stat()
            except OSError:
                continue
            # RECORD only points at candidates; the source's own hash and the header decide.
            if not stored.exists() or not _header_matches(stored, info):
                continue
            if _digest(source) != claimed:
                continue
            pycache = source.parent / "__pycache__"
            pycache.mkdir(exist_ok=True)
            try:
                _link(stored, pycache / f"{source.stem}.{rest}")
            except FileNotFoundError:  # pruned meanwhile: the import compiles it instead
                continue
            linked += 1
    return linked


def share_written(dest: Path, store: Path) -> int:
    """Move bytecode written in ``dest`` into the store and link it back; returns how many."""
    shared = 0
    for site in site_packages(dest):
        for pyc in site.glob(f"**/__pycache__/*{SUFFIX}"):
            try:
                info = pyc.stat()
            except OSError:
                continue
            stem, _, rest = pyc.name.partition(".")
            source = pyc.parent.parent / f"{stem}.py"
            if info.st_nlink > 1 or not source.is_file():  # linked already, or sourceless
                continue
            stored = _stored(store, _digest(source), rest)
            stored.parent.mkdir(parents=True, exist_ok=True)
            try:
                _link(stored, pyc)
            except FileNotFoundError:  # not stored yet (or pruned meanwhile): this one is
                _link(pyc, stored)
            shared += 1
    return shared


def prune(store: Path, *, dry_run: bool = False, leaving: Counter[Inode] | None = None) -> int:
    """Remove stored bytecode no environment links any more; returns the bytes freed.
    ``leaving``: links that are about to go (a dry run's estimate counts them as gone)."""
    freed = 0
    for stored in store.glob(f"*/*{SUFFIX}"):
        try:
            info = stored.stat()
        except OSError:
            continue
        if info.st_nlink - (leaving or Counter())[info.st_dev, info.st_ino] <= 1:
            freed += info.st_blocks * 512 if info.st_blocks else info.st_size
            if not dry_run:
                stored.unlink(missing_ok=True)
    return freed
