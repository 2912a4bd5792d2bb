# ruff: noqa: PTH102, PTH108, PTH116, PTH119, PTH120, PTH123 - hot loops over str paths
"""Bytecode shared between environments, so each file is compiled once per machine.

uv installs no bytecode, and compiling on import is most of a first import's cost (``import
sklearn`` compiles ~1,000 files). So after a build (kiln.builders.bytecodejob, or the health
check's imports of ``python.check_imports``) each ``.pyc`` under ``site-packages`` is moved into
a store keyed by the sha256 of its source and hard-linked back: ten environments with the same
packages share one copy (disk), and the next environment links the store's files in rather
than compiling them (time), like uv links package files from its cache.

Safe by construction: a file is stored under the sha256 of the source it was compiled from
(computed, not read from RECORD), and linked back only for a source whose RECORD names that
sha256 and whose mtime and size are the ones its header names (what Python validates on import). The path it was compiled under does not matter: Python sets
a code object's file name from where it loads the source. Python replaces a stale ``.pyc`` by an
atomic rename, never in place, so no environment can change a stored file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from kiln.private import private_folder

SUFFIX = ".pyc"
Inode = tuple[int, int]  # (st_dev, st_ino)


def site_packages(dest: Path) -> list[Path]:
    return sorted(dest.glob("lib/python3*/site-packages"))


def _cache_tag(site: Path) -> str:
    """``cpython-311`` for ``lib/python3.11/site-packages`` (a venv or conda prefix)."""
    return "cpython-" + site.parent.name.removeprefix("python").replace(".", "")


def _stored(store: str, source_digest: str, rest: str) -> str:
    return f"{store}/{source_digest}.{rest}"


# The loops below run for thousands of files per build, so they use str paths and os calls
# (the PTH suppressions at the top): pathlib's objects cost more here than the file system.


def _digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()  # sources are small


def _header_matches(pyc: str, source: os.stat_result) -> bool:
    """The ``.pyc`` is a timestamp one for a source of this mtime and size."""
    try:
        with open(pyc, "rb") as handle:
            header = handle.read(16)
    except OSError:
        return False
    if len(header) < 16 or int.from_bytes(header[4:8], "little") != 0:
        return False
    mtime = int.from_bytes(header[8:12], "little")
    size = int.from_bytes(header[12:16], "little")
    return mtime == int(source.st_mtime) & 0xFFFFFFFF and size == source.st_size & 0xFFFFFFFF


def _link(source: str, destination: str) -> None:
    """Hard-link ``source`` at ``destination``, atomically replacing what is there."""
    try:
        os.link(source, destination)  # a new name appears complete or not at all
        return
    except FileExistsError:
        pass
    temporary = f"{destination}.{os.urandom(4).hex()}.tmp"
    os.link(source, temporary)
    try:
        os.replace(temporary, destination)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _recorded_sources(site: Path) -> Iterator[tuple[str, str]]:
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
                yield f"{site}/{path}", raw.hex()


def link_known(dest: Path, store: Path) -> int:
    """Link the store's bytecode for the sources installed in ``dest``; returns how many."""
    linked = 0
    made: set[str] = set()
    for site in site_packages(dest):
        rest = f"{_cache_tag(site)}{SUFFIX}"
        for source, claimed in _recorded_sources(site):
            stored = _stored(str(store), claimed, rest)
            try:
                info = os.stat(source)
            except OSError:
                continue
            # The store's keys are true hashes (share_written computes them), so trusting this
            # RECORD can only mislead this package's own files; the header must match too.
            if not _header_matches(stored, info):
                continue
            folder, name = os.path.split(source)
            pycache = f"{folder}/__pycache__"
            if pycache not in made:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(pycache)
                made.add(pycache)
            try:
                _link(stored, f"{pycache}/{name[:-3]}.{rest}")
            except FileNotFoundError:  # pruned meanwhile: the import compiles it instead
                continue
            linked += 1
    return linked


def share_written(dest: Path, store: Path) -> int:
    """Move bytecode written in ``dest`` into the store and link it back; returns how many."""
    shared = 0
    private_folder(store)
    for site in site_packages(dest):
        for base, _dirs, files in os.walk(site):
            if os.path.basename(base) != "__pycache__":
                continue
            for name in files:
                shared += _share(f"{base}/{name}", str(store))
    return shared


def _share(pyc: str, store: str) -> int:
    stem, _, rest = os.path.basename(pyc).partition(".")
    source = f"{os.path.dirname(os.path.dirname(pyc))}/{stem}.py"
    try:
        if not rest.endswith(SUFFIX) or os.stat(pyc).st_nlink > 1:  # linked already
            return 0
        stored = _stored(store, _digest(source), rest)
    except OSError:  # sourceless, or gone
        return 0
    try:
        os.link(pyc, stored)  # the first of its kind: the store keeps this file
    except FileExistsError:
        try:
            _link(stored, pyc)  # known: this environment takes the stored file
        except FileNotFoundError:  # pruned meanwhile: this one stays unshared
            return 0
    return 1


def prune(store: Path, *, dry_run: bool = False, leaving: Counter[Inode] | None = None) -> int:
    """Remove stored bytecode no environment links any more; returns the bytes freed.
    ``leaving``: links that are about to go (a dry run's estimate counts them as gone)."""
    freed = 0
    for stored in store.glob(f"*{SUFFIX}"):
        try:
            info = stored.stat()
        except OSError:
            continue
        if info.st_nlink - (leaving or Counter())[info.st_dev, info.st_ino] <= 1:
            freed += info.st_blocks * 512 if info.st_blocks else info.st_size
            if not dry_run:
                stored.unlink(missing_ok=True)
    return freed
