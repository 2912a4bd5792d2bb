"""A run's source folder, frozen: its kept files (``.kilnignore``/``.gitignore`` honoured) stored
content-addressed in the artifact store, so a run can always be inspected or reproduced."""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath

from kiln.environment.files import context_files
from kiln.errors import InvalidRequest
from kiln.workspace import Workspace

FIELD = "source_directory"
DEFAULT_LIMIT_BYTES = 300 * 1024 * 1024  # as Azure ML's snapshot limit


def _size(number: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if number < 1024 or unit == "GB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    raise AssertionError("unreachable")


def limit_bytes() -> int:
    configured = os.environ.get("KILN_SNAPSHOT_LIMIT_MB")
    if not configured:
        return DEFAULT_LIMIT_BYTES
    try:
        megabytes = float(configured)
    except ValueError:
        megabytes = math.nan
    if not math.isfinite(megabytes) or megabytes <= 0:
        raise InvalidRequest(
            f"KILN_SNAPSHOT_LIMIT_MB={configured!r} is not a positive number of megabytes; "
            "set it to e.g. 500, or unset it for the default"
        )
    return int(megabytes * 1024 * 1024)


def script_path(source_dir: Path, script: str) -> str:
    """The script as a posix path relative to ``source_dir``; it must be a file inside it."""
    if not source_dir.is_dir():
        raise InvalidRequest(f"`{FIELD}`: {source_dir} is not a folder; pass -d FOLDER")
    candidate = Path(script)
    full = (candidate if candidate.is_absolute() else source_dir / candidate).resolve()
    root = source_dir.resolve()
    if root not in full.parents:
        raise InvalidRequest(
            f"`script`: {script} is outside the source folder {source_dir}; move it in or pass "
            "the folder that holds it with -d"
        )
    if not full.is_file():
        raise InvalidRequest(f"`script`: {script} does not exist in {source_dir}")
    return PurePosixPath(full.relative_to(root)).as_posix()


def take(workspace: Workspace, source_dir: Path, script: str, *, limit: int | None = None) -> str:
    """Store ``source_dir`` and return its tree digest; refuse one over the size limit, naming
    the largest files so the user knows what to list in ``.kilnignore``."""
    limit = limit_bytes() if limit is None else limit
    files = [(path.stat().st_size, rel) for rel, path in context_files(source_dir, field=FIELD)]
    if script not in {rel for _, rel in files}:
        raise InvalidRequest(
            f"`script`: {script} is excluded by .kilnignore or .gitignore in {source_dir}; "
            "un-ignore it"
        )
    total = sum(size for size, _ in files)
    if total > limit:
        largest = ", ".join(f"{rel} ({_size(size)})" for size, rel in sorted(files)[-5:][::-1])
        raise InvalidRequest(
            f"`{FIELD}`: {source_dir} holds {_size(total)} to snapshot, over the "
            f"{_size(limit)} limit; largest files: {largest}. List data in .kilnignore "
            "(or raise KILN_SNAPSHOT_LIMIT_MB)"
        )
    return workspace.artifacts.put_tree(source_dir, field=FIELD)
