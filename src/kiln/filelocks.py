"""Locks between processes on this machine: ``flock`` on a file under a private folder.

Why not the filelock package: since 3.15 it imports asyncio on import, 60 to 100 ms that every
build paid before doing anything (measured on a 2-core machine; a fixed cost the issue 14
benchmark shows against raw uv). On POSIX it is an flock, as here. The kernel drops a lock when
its holder exits or is killed, so no lock outlives a crash and no lock file needs cleaning up.
Locks are per open file: two holders in one process (threads) exclude each other too.
Standard library only, so the fast paths can use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from kiln.private import open_private, private_folder


@contextlib.contextmanager
def held(path: Path, *, shared: bool = False, wait: bool = True) -> Iterator[bool]:
    """Hold the lock on ``path`` (its folder and the file are created private if missing):
    exclusive, or ``shared`` with other shared holders. With ``wait=False`` it yields False
    at once when another holder is in the way, instead of waiting; else it yields True."""
    private_folder(path.parent)
    descriptor = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(descriptor, mode if wait else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
