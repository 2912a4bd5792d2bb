"""Which locked packages uv's cache is known to hold, so an install goes offline only when it
can succeed.

An offline ``uv pip sync`` skips ~0.3 s of index requests when every file is cached, but on a
cache that lacks one it fails, and the online run after it pays for both. So every package a
sync installed is remembered beside uv's cache, by a digest of its hashed requirement entry
(name, version and the hashes of its files), and a sync is tried offline only when all of its
entries are remembered. An entry uv has pruned since merely costs the online retry it always
had. Empty files named by digest: concurrent builds add to it without any lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path


def entries(requirements: str) -> list[str]:
    """The package entries of a hashed requirements file (an entry's ``--hash`` options
    continue it on indented lines)."""
    found = re.split(r"\n(?=\S)", requirements)
    return [e.strip() for e in found if e.strip() and not e.startswith("#")]


def _folder(uv_cache: Path) -> Path:
    return uv_cache.with_name(f"{uv_cache.name}-held")


def _name(entry: str) -> str:
    return hashlib.sha256(entry.encode()).hexdigest()[:32]


def all_held(uv_cache: Path, installing: Iterable[str]) -> bool:
    folder = _folder(uv_cache)
    return all((folder / _name(entry)).exists() for entry in installing)


def remember(uv_cache: Path, installed: Iterable[str]) -> None:
    folder = _folder(uv_cache)
    with contextlib.suppress(OSError):  # remembering is an optimization, never an error
        folder.mkdir(parents=True, exist_ok=True)
        for entry in installed:
            (folder / _name(entry)).touch()
