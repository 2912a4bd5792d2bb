"""Remembered interpreter discovery: ``python.version`` -> the interpreter uv found for it.

Finding an interpreter (``uv python find`` and a probe of what it is) costs ~0.2 s per build.
The answer is stored per version request under ``<cache root>/interpreters/`` with the identity
of the interpreter file (device, inode, size, mtime) and reused only while that file is
unchanged and at most a day old, so a removed or upgraded Python is found again at once and a
new installation within a day. ``$PATH`` is not part of the key: shells, IDEs and job runners
set it differently for the same user, which made every one of them search again.
Anything unreadable counts as not remembered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path

from kiln.atomicfile import write_atomically
from kiln.builders.base import Target

MAX_AGE_SECONDS = 86400.0  # a newly installed interpreter that uv would prefer is seen within


def _file(root: Path, request: str) -> Path:
    name = hashlib.sha256(f"python-request:{request}".encode()).hexdigest()[:24]
    return root / "interpreters" / f"{name}.json"


def _identity(interpreter: Path) -> list[int] | None:
    try:
        info = interpreter.stat()  # follows symlinks: the real file must be unchanged
    except OSError:
        return None
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns]


def recall(root: Path, request: str) -> Target | None:
    try:
        data = json.loads(_file(root, request).read_text(encoding="utf-8"))
        interpreter = Path(data["interpreter"])
        fresh = time.time() - float(data["at"]) < MAX_AGE_SECONDS
        if fresh and data["identity"] == _identity(interpreter):
            return Target(interpreter, str(data["version"]), str(data["platform"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def remember(root: Path, request: str, target: Target) -> None:
    identity = _identity(target.interpreter)
    if identity is None:
        return
    record = {
        "interpreter": str(target.interpreter),
        "version": target.python_version,
        "platform": target.platform,
        "identity": identity,
        "at": time.time(),
    }
    # Atomic: a concurrent reader sees old or new, never half.
    with contextlib.suppress(OSError):  # remembering is an optimization, never an error
        write_atomically(_file(root, request), json.dumps(record))
