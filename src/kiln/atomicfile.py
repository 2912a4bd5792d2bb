"""One atomic write: a reader sees the old file or the new one, never half of either.

Standard library only, so the fast paths (fastexec, fastread) can use it too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kiln.private import private_folder


def write_atomically(path: Path, data: bytes | str, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    ``durable`` also flushes the file to disk before the rename (for records that must survive
    a power cut, not only a crash of this process). The folder is created if missing; a failed
    write leaves no temporary file behind. The file is ``0600`` (``mkstemp``'s mode), a folder
    made for it ``0700``.
    """
    private_folder(path.parent)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
