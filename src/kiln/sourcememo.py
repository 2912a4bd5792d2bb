"""What a definition on disk was last registered as, so that registering it again unchanged
answers without loading it through pydantic or the registry through SQLAlchemy.

Why: scripts and CI register the same files on every run, and a definition's digest is known
only after the definition is validated (pydantic: ~0.25 s to import on a 2-core machine). An
entry is keyed by the source as given (absolute path, format, name and version overrides) and
holds the sha256 of every file the loader read, the names in the definition's folder (a new
file there can change which file is read), the loader's warnings and the resulting name,
version and definition digest. It counts only while all of these still match and Kiln's own
code is unchanged (its version, and the size and mtime of its modules); anything else is a
miss: the ordinary path runs and writes the entry again. A definition that names local files
or stored wheels is never remembered: their content decides what is registered. Nor is a source
whose files or folder changed less than ``SETTLED_NS`` before its loading began (as git treats
"racily clean" files): the loader may have read other bytes than those hashed afterwards.

Entries live in the workspace folder (``.kiln/registered/``), beside the registry whose versions
they name; they hold no secret (a definition cannot hold one).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from kiln import __version__

ENTRIES = "registered"  # the folder in the workspace root (.kiln/)
SETTLED_NS = 2_000_000_000  # file times can be as coarse as 2 s (FAT, some network shares)
_PACKAGE = Path(__file__).resolve().parent
_CODE = ("", "environment", "formats")  # the modules that load, validate and hash definitions


class SourceSpec(NamedTuple):
    """A definition source as a command line gives it."""

    path: Path
    fmt: str | None
    name: str | None
    version: str | None

    def key(self) -> str:
        given = [str(self.path.absolute()), self.fmt, self.name, self.version]
        return hashlib.sha256(json.dumps(given).encode()).hexdigest()

    def folder(self) -> Path:
        path = self.path.absolute()
        return path if path.is_dir() else path.parent


class Remembered(NamedTuple):
    """What the source registered as: the registry is still asked whether that version exists."""

    name: str
    version: str | None  # as requested: None takes the newest version with this content
    definition_digest: str
    warnings: list[str]


def _code() -> str:
    stats = [__version__]
    for folder in (_PACKAGE / sub for sub in _CODE):
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.endswith(".py"):
                    st = entry.stat()
                    stats.append(f"{folder.name}/{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(stats).encode()).hexdigest()


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _inputs(files: Sequence[Path], folder: Path) -> dict[str, Any]:
    """What the loader's answer depends on besides the source's key. Raises OSError if a file
    or the folder went away."""
    digests = {str(f): [hashlib.sha256(f.read_bytes()).hexdigest(), *_stat(f)] for f in files}
    listing = [*sorted(p.name for p in folder.iterdir()), *_stat(folder)]
    return {"code": _code(), "files": digests, "folder": listing}


def _settled(inputs: dict[str, Any], started_ns: int) -> bool:
    times: list[int] = [stats[-1] for stats in inputs["files"].values()]
    times.append(inputs["folder"][-1])
    return max(times) < started_ns - SETTLED_NS


def _entry_path(workspace_root: Path, spec: SourceSpec) -> Path:
    return workspace_root / ENTRIES / f"{spec.key()}.json"


def recall(workspace_root: Path, spec: SourceSpec) -> Remembered | None:
    """What ``spec`` registered as, if nothing it depends on changed since; else None."""
    try:
        entry = json.loads(_entry_path(workspace_root, spec).read_text(encoding="utf-8"))
        files = [Path(f) for f in entry["inputs"]["files"]]
        if entry["inputs"] != _inputs(files, spec.folder()):
            return None
        return Remembered(**entry["remembered"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(
    workspace_root: Path,
    spec: SourceSpec,
    files: Sequence[Path],
    remembered: Remembered,
    *,
    started_ns: int,
) -> None:
    """Record what ``spec`` registered as; ``files`` are those its loader read after
    ``started_ns`` (``time.time_ns()``). Best effort: a cache that cannot be written only means
    the next register takes the ordinary path."""
    from kiln.atomicfile import write_atomically

    try:
        inputs = _inputs([f.absolute() for f in files], spec.folder())
        if not _settled(inputs, started_ns):
            return
        entry = {"inputs": inputs, "remembered": remembered._asdict()}
        write_atomically(_entry_path(workspace_root, spec), json.dumps(entry, indent=1))
    except OSError:
        pass
