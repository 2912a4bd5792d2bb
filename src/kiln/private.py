"""Folders and files readable by their owner only, whatever the umask.

Everything Kiln keeps for itself outside a project's own files (the build cache with its
locks, logs, markers and staged wheels; the per-user workspace; crash logs) may name private
hosts, packages and paths, so it is created ``0700`` (folders) and ``0600`` (files). Existing
folders are left as they are: a cache folder the user made keeps the mode they gave it.
Standard library only, so the fast paths can use it too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """Create ``path`` and its missing parents as ``0700``; a folder that exists is kept."""
    missing = []
    folder = path
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            folder.mkdir(mode=FOLDER_MODE)
            folder.chmod(FOLDER_MODE)  # mkdir's mode is masked by the umask: set it exactly
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` that creates ``path`` as ``0600`` (an existing file keeps its mode)."""
    return os.open(path, flags, FILE_MODE)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, created ``0600`` if missing (not atomic: see atomicfile)."""
    with os.fdopen(open_private(path), "w", encoding="utf-8") as out:
        out.write(text)
