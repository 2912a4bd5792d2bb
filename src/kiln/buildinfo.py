"""What is known about the builds of a registered environment, without building anything: the
latest attempt and its log, the exported lock, and the build on this machine.

Read-only by design: these serve ``kiln env logs|lock|show --build`` and the SDK, and a read
never builds and never creates the cache.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.errors import InvalidDefinition, NotFound

if TYPE_CHECKING:
    from kiln.builders.base import Builder
    from kiln.catalog import EnvironmentRecord
    from kiln.registry.lock_queries import LockRow
    from kiln.workspace import Workspace

NOT_BUILT = "not built"


@dataclass(frozen=True)
class BuildAttempt:
    """The latest recorded build of a build hash, on any machine sharing the workspace."""

    status: str  # "succeeded" or "failed"
    machine: str
    started_at: dt.datetime
    duration_ms: int
    error: str | None
    log_digest: str | None
    log: Path | None  # the log in the artifact store; None when it is not there


@dataclass(frozen=True)
class BuildInfo:
    """The build behind a version on this machine (what Azure ML's get_image_details gives).
    ``state`` is "ready", "broken: WHY" or "not built" (then only ``build_hash`` is set)."""

    build_hash: str
    state: str
    builder: str | None = None
    platform: str | None = None
    lock_generation: int | None = None
    lock_digest: str | None = None
    location: str | None = None
    interpreter: str | None = None
    python: str | None = None
    size_bytes: int | None = None
    packages: int | None = None
    build_seconds: float | None = None
    tools: dict[str, str] | None = None
    last_used: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def latest_build(workspace: Workspace, *, build_hash: str) -> BuildAttempt | None:
    """The latest build attempt of ``build_hash``, or None when it was never built."""
    from kiln.buildstore import open_build_store

    store = open_build_store(workspace)
    rows = store.list_builds(build_hash=build_hash, limit=1)
    if not rows:
        return None
    row = rows[0]
    digest = row["log_digest"]
    return BuildAttempt(
        status=row["status"],
        machine=row["machine"],
        started_at=row["started_at"],
        duration_ms=row["duration_ms"],
        error=row["error"],
        log_digest=digest,
        log=store.build_log(build_hash=build_hash, digest=digest) if digest else None,
    )


def build_attempts(workspace: Workspace, *, build_hash: str) -> list[dict[str, Any]]:
    """Every recorded build of ``build_hash``, newest first (the public ``build-attempt``)."""
    import json

    from kiln.buildstore import open_build_store
    from kiln.utctime import utc_text

    rows = open_build_store(workspace).list_builds(build_hash=build_hash)
    return [
        {
            "build_hash": row["build_hash"],
            "platform": row["platform"],
            "builder": row["builder"],
            "machine": row["machine"],
            "status": row["status"],
            "error": row["error"],
            "lock_digest": row["lock_digest"],
            "log_digest": row["log_digest"],
            "tool_versions": json.loads(row["tool_versions"] or "{}"),
            "started_at": utc_text(row["started_at"]),
            "duration_ms": row["duration_ms"],
            "created_by": row["created_by"],
        }
        for row in rows
    ]


def stored_locks(workspace: Workspace, *, build_hash: str) -> list[dict[str, Any]]:
    """Every stored lock generation of ``build_hash``, per platform (the public ``lock``)."""
    from kiln.buildstore import open_build_store
    from kiln.utctime import utc_text

    rows = open_build_store(workspace).list_locks(build_hash=build_hash)
    return [
        {
            "build_hash": row.build_hash,
            "platform": row.platform,
            "generation": row.generation,
            "lock_digest": row.lock_digest,
            "format": row.lock_format,
            "resolver": row.resolver,
            "packages": [{"name": p["name"], "version": p["version"]} for p in row.packages],
            "created_at": utc_text(row.created_at),
        }
        for row in rows
    ]


def logged_build(workspace: Workspace, record: EnvironmentRecord) -> BuildAttempt:
    """The latest build of ``record`` whose log the workspace holds; NotFound otherwise."""
    attempt = latest_build(workspace, build_hash=record.build_hash)
    if attempt is None or attempt.log_digest is None:
        raise NotFound(
            f"{record.reference} has not been built yet; run `kiln env build {record.reference}`"
        )
    if attempt.log is None:
        raise NotFound(f"the build log of {record.reference} is missing from the workspace")
    return attempt


def latest_build_log(workspace: Workspace, *, build_hash: str) -> Path | None:
    """The full log of the latest build of ``build_hash``, or None (never built, or lost)."""
    attempt = latest_build(workspace, build_hash=build_hash)
    return attempt.log if attempt is not None else None


def stored_lock(
    workspace: Workspace, record: EnvironmentRecord, *, generation: int | None = None
) -> tuple[Builder, LockRow]:
    """The stored lock of ``record`` for this machine's platform (the newest generation, or
    ``generation``), verified against its digest and the definition's pins, and its builder."""
    from kiln.builders import choice
    from kiln.builders.base import BuildContext
    from kiln.buildlocks import verify_lock
    from kiln.buildlog import NullLog
    from kiln.buildstore import open_build_store

    builder = choice.choose(record.definition)
    # The platform of this machine's build when there is one (asking an image builder for its
    # target would build the definition's Dockerfile), else the builder's answer.
    found = _newest_built(workspace.cache_root / "envs", record.build_hash, builder.name)
    if found is not None:
        platform = str(found[1].get("platform"))
    else:
        context = BuildContext(NullLog(), workspace.cache_root / "uv")
        platform = builder.target(record.definition, context).platform
    row = open_build_store(workspace).get_lock(
        build_hash=record.build_hash, platform=platform, generation=generation
    )
    if row is None:
        raise NotFound(
            f"{record.reference} has no lock for {platform} yet; "
            f"run `kiln env build {record.reference}`"
        )
    verify_lock(row, record.definition, reference=record.reference)  # before pip or uv gets it
    return builder, row


def export_lock(
    workspace: Workspace, record: EnvironmentRecord, *, fmt: str, generation: int | None = None
) -> str:
    """The stored lock (see ``stored_lock``) in the export format ``fmt``
    (kiln.lockexport.FORMATS)."""
    from kiln.builders.base import Lock

    builder, row = stored_lock(workspace, record, generation=generation)
    header = (
        f"kiln lock of {record.reference}, generation {row.generation}, {row.platform}, "
        f"{row.lock_digest[:12]}"
    )
    try:
        return builder.export_lock(
            Lock(row.lock_format, row.lock_text, row.packages), fmt, header=header
        )
    except ValueError as exc:
        raise InvalidDefinition(str(exc)) from None


def lock_summary(
    workspace: Workspace, record: EnvironmentRecord, *, generation: int | None = None
) -> dict[str, Any]:
    """The stored lock as the public ``lock`` document (without its text)."""
    from kiln.utctime import utc_text

    _, row = stored_lock(workspace, record, generation=generation)
    return {
        "build_hash": row.build_hash,
        "platform": row.platform,
        "generation": row.generation,
        "lock_digest": row.lock_digest,
        "format": row.lock_format,
        "resolver": row.resolver,
        "packages": [{"name": p["name"], "version": p["version"]} for p in row.packages],
        "created_at": utc_text(row.created_at),
    }


def build_info(workspace: Workspace, record: EnvironmentRecord) -> BuildInfo:
    """The newest ready build of ``record`` in this machine's cache, described; never builds
    and never creates the cache."""
    found = _newest_built(workspace.cache_root / "envs", record.build_hash)
    if found is None:
        return BuildInfo(record.build_hash, NOT_BUILT)
    path, marker = found
    return _describe(workspace, record, path, marker)


def _newest_built(
    envs: Path, build_hash: str, builder: str | None = None
) -> tuple[Path, dict[str, Any]] | None:
    """The ready folder of ``build_hash`` (made by ``builder``, when given) with the newest
    lock generation (then the most recently used), and its marker."""
    from kiln.cache import MARKER, read_marker

    candidates = []
    folders = sorted(envs.iterdir()) if envs.is_dir() else []
    for folder in folders:
        marker = read_marker(folder)
        if marker is None or builder not in (None, marker.get("builder")):
            continue
        if marker.get("build_hash") == build_hash:
            rank = (int(marker.get("lock_generation") or 0), (folder / MARKER).stat().st_mtime)
            candidates.append((rank, folder, marker))
    if not candidates:
        return None
    _, folder, marker = max(candidates, key=lambda c: c[0])
    return folder, marker


def _describe(
    workspace: Workspace, record: EnvironmentRecord, path: Path, marker: dict[str, Any]
) -> BuildInfo:
    from kiln.builders import choice
    from kiln.buildstore import open_build_store
    from kiln.cache import MARKER, disk_usage

    builder = choice.BUILDERS.get(str(marker.get("builder")))
    problem = builder.quick_check(path) if builder else "built by an unknown builder"
    locks = open_build_store(workspace).list_locks(build_hash=record.build_hash)
    lock = next((row for row in locks if row.lock_digest == marker.get("lock_digest")), None)
    last_used = dt.datetime.fromtimestamp((path / MARKER).stat().st_mtime, dt.timezone.utc)
    return BuildInfo(
        build_hash=record.build_hash,
        state="ready" if problem is None else f"broken: {problem}",
        builder=marker.get("builder"),
        platform=marker.get("platform"),
        lock_generation=marker.get("lock_generation"),
        lock_digest=marker.get("lock_digest"),
        location=str(path),
        interpreter=str(builder.interpreter(path)) if builder and problem is None else None,
        python=marker.get("python"),
        size_bytes=disk_usage(path),
        packages=len(lock.packages) if lock else None,
        build_seconds=marker.get("seconds"),
        tools=marker.get("tools"),
        last_used=last_used.isoformat(timespec="seconds"),
    )
