"""Build once, reuse instantly: from a registered environment to a ready interpreter.

The first build of a build hash on a platform resolves it and stores the result in the
workspace as a lock; every later build, on any machine sharing the workspace, installs exactly
that lock. The materialization key is a digest of (recipe, builder, build hash, lock digest,
platform), so a new lock generation (``--refresh``) builds anew and the old build stays usable.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kiln.builders import choice, packagecaches
from kiln.builders.base import Activation, BuildContext, Builder, BuildError, Lock, Target
from kiln.buildfailures import RecentFailure, building_failed
from kiln.buildinputs import (
    WHEELS_FOLDER,
    secrets_for,
    stage_build_context,
    stage_local_wheels,
)
from kiln.buildleases import BuildLease
from kiln.buildlocks import resolve_lock, stored_lock, verify_lock
from kiln.buildlog import BuildLog, Reporter, SilentReporter
from kiln.cache import Cache, materialization_key
from kiln.catalog import EnvironmentRecord
from kiln.errors import KilnError
from kiln.registry.lease_queries import LeaseKey
from kiln.registry.lock_queries import LockRow
from kiln.workspace import Workspace


@dataclass(frozen=True)
class Built:
    """A ready materialization of a registered environment."""

    record: EnvironmentRecord
    key: str
    path: Path
    interpreter: Path
    builder: str  # its name in kiln.choice.BUILDERS
    target: Target
    lock: LockRow
    built_now: bool
    seconds: float
    activation: Activation
    previous_lock: LockRow | None = None  # set by --refresh when a new generation was made


def open_cache(workspace: Workspace) -> Cache:
    return Cache(workspace.cache_root)


def _to_lock(row: LockRow) -> Lock:
    return Lock(row.lock_format, row.lock_text, row.packages, row.resolver)


def _refuse_r(record: EnvironmentRecord) -> None:
    """An R section is stored and exported (Azure ML's), never built: say so before anything."""
    r = record.definition.r
    if r is not None and r.model_dump(exclude_defaults=True):
        raise BuildError(
            f"{record.reference} has an R section (`r`), and Kiln builds Python environments "
            "only: remove `r` to build it here (Kiln keeps it to export the definition to "
            "Azure ML)"
        )


def ensure_built(
    workspace: Workspace,
    record: EnvironmentRecord,
    *,
    cache: Cache | None = None,
    refresh: bool = False,
    retry: bool = False,
    reporter: Reporter | None = None,
    lock_digest: str | None = None,
    host_only: bool = False,
    refresh_base: bool = False,
    pull_only: bool = False,
    no_cache: bool = False,
) -> Built:
    """The ready materialization of ``record``, building it first if needed. ``lock_digest``
    asks for one stored lock generation instead of the newest (reproducing a run);
    ``host_only`` builds only the Python part of a definition that names an image;
    ``refresh_base``, ``pull_only`` and ``no_cache`` are for images (see BuildContext).

    Every success with the newest lock points this machine's warm path (fastexec) at it, so
    ``kiln env exec`` finds it without SQLAlchemy whichever face built it."""
    _refuse_r(record)
    cache = cache or open_cache(workspace)
    reporter = reporter or SilentReporter()
    builder = choice.choose(record.definition, host_only=host_only)
    log = BuildLog(cache.root / "tmp" / f"log.{os.getpid()}.{uuid.uuid4().hex[:8]}.log", reporter)
    attempt = _Attempt(workspace, log, record.build_hash, builder)
    options = {"refresh_base": refresh_base, "pull_only": pull_only, "no_cache": no_cache}
    # Held throughout: `kiln cache gc` leaves the package caches alone while a build uses them.
    with packagecaches.in_use(cache.root):
        built = _ensure(
            workspace,
            record,
            cache,
            attempt,
            refresh=refresh,
            retry=retry,
            lock_digest=lock_digest,
            options=options,
        )
    if lock_digest is None:  # the pointer names the newest lock's build, for the warm path
        _point_warm_path(cache, built)
    return built


def _point_warm_path(cache: Cache, built: Built) -> None:
    from kiln.fastexec import write_pointer

    write_pointer(
        cache.root,
        build_hash=built.record.build_hash,
        key=built.key,
        platform=built.target.platform,
        lock_digest=built.lock.lock_digest,
        builder=built.builder,
        interpreter=built.interpreter,
        activation=built.activation,
    )


def _ensure(
    workspace: Workspace,
    record: EnvironmentRecord,
    cache: Cache,
    attempt: _Attempt,
    *,
    refresh: bool,
    retry: bool,
    lock_digest: str | None,
    options: dict[str, bool],
) -> Built:
    from kiln.buildstore import open_build_store

    open_build_store(workspace).check_writable()
    log, builder = attempt.log, attempt.builder
    try:
        ctx = BuildContext(
            log,
            cache.uv_cache,
            secrets_for(record.definition, conda_channels=choice.reads_conda_channels(builder)),
            wheel_root=cache.root / WHEELS_FOLDER,
            local_wheels=stage_local_wheels(workspace, cache, record.definition),
            image_registry=workspace.image_registry,
            refresh_base=options["refresh_base"],
            pull_only=options["pull_only"],
            no_cache=options["no_cache"],
            known_platforms=_stored_platforms(workspace, record.build_hash),
            build_context=stage_build_context(workspace, record.definition),
            python_downloads=workspace.setting("python_downloads") == "automatic",
            python_mirror=workspace.setting("python_mirror"),
        )
        attempt.target = builder.target(record.definition, ctx)
        attempt.lease = BuildLease(
            workspace,
            LeaseKey(record.build_hash, attempt.target.platform, builder.name),
            record.reference,
            log,
        )
        lock_row, previous = _choose_lock(
            workspace,
            cache,
            record,
            attempt,
            ctx,
            refresh=refresh,
            retry=retry,
            lock_digest=lock_digest,
        )
        attempt.lock = lock_row
        path, key, built_now = _materialize(cache, record, attempt, ctx, retry=retry)
        return Built(
            record,
            key,
            path,
            builder.interpreter(path),
            builder.name,
            attempt.target,
            lock_row,
            built_now,
            time.monotonic() - attempt.started,
            builder.activation(path),
            previous if refresh else None,
        )
    except RecentFailure:
        raise
    except KilnError as exc:
        if attempt.lock is None:  # failed before a build started: still keep the log
            attempt.finish(error=str(exc))
        raise
    finally:
        if attempt.lease is not None:  # success or failure: a retry never waits for us
            attempt.lease.release()
        log.close()
        if log.opened:
            log.path.unlink(missing_ok=True)


def _stored_platforms(workspace: Workspace, build_hash: str) -> tuple[str, ...]:
    from kiln.buildstore import open_build_store

    rows = open_build_store(workspace).list_locks(build_hash=build_hash)
    return tuple(r.platform for r in sorted(rows, key=lambda r: r.generation, reverse=True))


def _choose_lock(
    workspace: Workspace,
    cache: Cache,
    record: EnvironmentRecord,
    attempt: _Attempt,
    ctx: BuildContext,
    *,
    refresh: bool,
    retry: bool,
    lock_digest: str | None,
) -> tuple[LockRow, LockRow | None]:
    """(the lock to build, verified; the previous generation when --refresh made a new one)."""
    assert attempt.target is not None and attempt.lease is not None
    if lock_digest is not None:
        return stored_lock(workspace, record, attempt.target, lock_digest), None
    row, previous = resolve_lock(
        workspace,
        cache,
        attempt.builder,
        record.definition,
        record.build_hash,
        attempt.target,
        ctx,
        refresh=refresh,
        retry=retry,
        claim=attempt.lease.take,
    )
    # Shared rows can be edited by anyone with write access: checked before any install.
    return verify_lock(row, record.definition, reference=record.reference), previous


def _materialize(
    cache: Cache,
    record: EnvironmentRecord,
    attempt: _Attempt,
    ctx: BuildContext,
    *,
    retry: bool,
) -> tuple[Path, str, bool]:
    """Reuse or build the materialization of the attempt's lock: (path, key, built now)."""
    assert attempt.target is not None and attempt.lock is not None
    assert attempt.lease is not None
    target, lock_row, definition = attempt.target, attempt.lock, record.definition
    builder = attempt.builder
    key = materialization_key(
        builder.name, record.build_hash, lock_row.lock_digest, target.platform
    )
    failure = cache.recent_failure(key)
    if failure and not retry:
        raise building_failed(failure, record.reference)

    context = replace(
        ctx,
        final=cache.path(key),
        bytecode_store=cache.root / packagecaches.BYTECODE,
        labels={
            "io.kiln.environment": record.reference,
            "io.kiln.build-hash": record.build_hash,
            "io.kiln.lock-digest": lock_row.lock_digest,
            "io.kiln.definition-digest": record.definition_digest,
        },
    )

    def build(staging: Path) -> dict[str, Any]:
        # The builder health-checks what it built: a failure raises, and nothing is kept.
        checked = _built_before(attempt, record.build_hash)  # asked only when building
        lock = _to_lock(lock_row)
        builder.build(definition, lock, target, staging, replace(context, lock_checked=checked))
        return {  # the marker's facts
            "builder": builder.name,
            "build_hash": record.build_hash,
            "lock_digest": lock_row.lock_digest,
            "lock_generation": lock_row.generation,
            "platform": target.platform,
            "python": target.python_version,
            "tools": builder.tool_versions(),
            "seconds": round(time.monotonic() - attempt.started, 3),
        }

    if builder.shared and (
        cache.marker(key) is None or builder.quick_check(cache.path(key)) is not None
    ):
        # Not ready here, and another machine may be building what it will push: the lease
        # comes first, then the build pulls that (cache.materialize checks again under its
        # own lock). A machine-local result is not waited for: it installs the stored lock.
        attempt.lease.take()
    try:
        path, built_now = cache.materialize(
            key, build, quick_check=builder.quick_check, notify=attempt.log.reporter.message
        )
    except KilnError as exc:
        cache.remember_failure(key, str(exc), attempt.finish(error=str(exc)))
        raise
    if built_now:
        attempt.finish(error=None)
        cache.forget_failure(key)
        _compile_later(cache, path, builder.interpreter(path))
    return path, key, built_now


def _built_before(attempt: _Attempt, build_hash: str) -> bool:
    """Whether a build of the attempt's lock by its builder for its platform succeeded already,
    on any machine of the workspace: its health check then found the lock's dependencies
    consistent, and the same files are installed now."""
    from kiln.buildstore import open_build_store

    assert attempt.lock is not None and attempt.target is not None
    wanted = (attempt.lock.lock_digest, attempt.builder.name, attempt.target.platform)
    rows = open_build_store(attempt.workspace).list_builds(build_hash=build_hash)
    return any(
        (r["lock_digest"], r["builder"], r["platform"]) == wanted and r["status"] == "succeeded"
        for r in rows
    )


def _compile_later(cache: Cache, path: Path, python: Path) -> None:
    """Bytecode the store lacks is compiled after the build, off its critical path."""
    from kiln.builders import bytecodejob

    bytecodejob.start(path, python, cache.root / packagecaches.BYTECODE)


@dataclass
class _Attempt:
    """One call of ensure_built, recorded in the registry when it builds or fails."""

    workspace: Workspace
    log: BuildLog
    build_hash: str
    builder: Builder
    target: Target | None = None
    lock: LockRow | None = None
    lease: BuildLease | None = None  # taken only when this attempt resolves or builds
    started: float = field(default_factory=time.monotonic)

    def finish(self, *, error: str | None) -> str:
        """Keep the log and record the attempt where the workspace keeps its builds; returns
        the log's digest."""
        import datetime as dt
        import json

        from kiln.accounts import local_actor
        from kiln.buildstore import open_build_store

        self.log.write(f"==> {'failed: ' + error if error else 'succeeded'}\n")
        self.log.close()
        elapsed = time.monotonic() - self.started
        digest = open_build_store(self.workspace).record_build(
            log=self.log.path,
            build_hash=self.build_hash,
            platform=self.target.platform if self.target else "unknown",
            lock_digest=self.lock.lock_digest if self.lock else None,
            builder=self.builder.name,
            machine=socket.gethostname(),
            status="failed" if error else "succeeded",
            error=error,
            tool_versions=json.dumps(self.builder.tool_versions()),
            started_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=elapsed),
            duration_ms=int(elapsed * 1000),
            created_by=local_actor(),  # who ran the build, on this machine
        )
        return digest
