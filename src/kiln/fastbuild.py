"""A ``kiln env build`` without SQLAlchemy or pydantic: the common case of a plain pip
definition on the embedded SQLite registry (what takes this path: kiln.fastplan).

Why: such a build is ``uv venv && uv pip sync`` of a known lock plus a health check (preceded,
on the first build, by ``uv pip compile`` of the lock: kiln.fastresolve), and the full path
spent more time importing SQLAlchemy and pydantic than uv spent installing. This path reads
with ``sqlite3`` (kiln.registry.fastbuilds), starts ``uv venv`` as soon as the interpreter is
known, and resolves and builds with the venv builder's own functions, so the steps, the stored
lock, the health check, the marker, the build record and the bytecode job are the full path's.
Like the full path, a build from a stored lock takes no build lease: a venv stays on this
machine, and builds of one key are serialized by the cache's file lock
(kiln.cache.Cache.materialize).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from kiln.builders import bytecodejob, packagecaches, venv, venvcheck
from kiln.builders.base import BuildContext, Lock, Log
from kiln.buildfailures import building_failed, resolving_failed
from kiln.buildlog import BuildLog, Reporter
from kiln.cache import WHEELS_FOLDER, Cache, materialization_key
from kiln.errors import KilnError
from kiln.fastexec import write_pointer
from kiln.fastplan import Plan, buildable_lock, pip_index, resolution_name, to_lock
from kiln.fastresolve import FirstLock
from kiln.registry import fastbuilds
from kiln.registry.lockrow import LockRow, lock_digest
from kiln.registry.readonly import immediate_transaction
from kiln.workspace import Workspace


class WarmBuild(NamedTuple):
    builder: str
    path: Path
    interpreter: Path
    built_now: bool
    seconds: float
    lock: LockRow


class _Built(NamedTuple):
    lock: LockRow
    key: str
    path: Path
    built_now: bool


class _Contradicted(Exception):
    """The index resolved another lock than the guess being built."""


def _bytecode_store(cache: Cache) -> Path:
    return cache.root / packagecaches.BYTECODE


def _context(plan: Plan, digest: str, key: str, log: Log) -> BuildContext:
    """The full path's context for a venv build of the lock ``digest`` with no local wheels
    and no secrets (ensure_built's, then _materialize's additions)."""
    cache, version = plan.cache, plan.version
    return BuildContext(
        log,
        cache.uv_cache,
        {},
        wheel_root=cache.root / WHEELS_FOLDER,
        final=cache.path(key),
        bytecode_store=_bytecode_store(cache),
        labels={
            "io.kiln.environment": f"{version.name}:{version.version}",
            "io.kiln.build-hash": version.build_hash,
            "io.kiln.lock-digest": digest,
            "io.kiln.definition-digest": version.definition_digest,
        },
    )


def build_planned(plan: Plan, workspace: Workspace, reporter: Reporter) -> WarmBuild:
    """Reuse or build ``plan``'s environment as ensure_built does, resolving its first lock
    when none is stored, then point the warm exec path at it. A failure is recorded and
    remembered, as there, and raised."""
    cache = plan.cache
    log_path = cache.root / "tmp" / f"log.{os.getpid()}.{os.urandom(4).hex()}.log"
    log = BuildLog(log_path, reporter)
    try:
        with packagecaches.in_use(cache.root):
            if plan.lock is not None:
                done = _build_row(plan, workspace, log, plan.lock)
            else:
                done = _first_build(plan, workspace, log)
    finally:
        plan.connection.close()
        log.close()
        if log.opened:
            log.path.unlink(missing_ok=True)
    _point_warm_path(plan, done.lock, done.key, done.path)
    seconds = time.monotonic() - plan.started
    path = done.path
    return WarmBuild(venv.name, path, venv.interpreter(path), done.built_now, seconds, done.lock)


def _install(plan: Plan, lock: Lock, digest: str, staging: Path, ctx: BuildContext) -> None:
    """The venv builder's build of ``lock`` into ``staging``."""
    checked = fastbuilds.built_before(
        plan.connection,
        build_hash=plan.version.build_hash,
        lock_digest=digest,
        builder=venv.name,
        platform=plan.target.platform,
    )
    # From here the main thread mostly waits for uv, so this costs the build no time.
    threading.Thread(target=_prepare_the_record, name="kiln-record", daemon=True).start()
    venv.build_locked(
        lock,
        plan.target,
        staging,
        replace(ctx, lock_checked=checked),
        index=pip_index(plan.pip),
        check_imports=plan.check_imports,
    )


def _key(plan: Plan, digest: str) -> str:
    return materialization_key(venv.name, plan.version.build_hash, digest, plan.target.platform)


def _build_row(plan: Plan, workspace: Workspace, log: BuildLog, row: LockRow) -> _Built:
    """Reuse or build the stored lock ``row``, recording and remembering a failure (one
    that happened moments ago is not tried again, as on the full path)."""
    key = _key(plan, row.lock_digest)
    failure = plan.cache.recent_failure(key)
    if failure and not plan.retry:
        raise building_failed(failure, plan.reference)
    ctx = _context(plan, row.lock_digest, key, log)

    def build(staging: Path) -> dict[str, Any]:
        _install(plan, to_lock(row), row.lock_digest, staging, ctx)
        return _marker_facts(plan, row)

    try:
        path, built_now = plan.cache.materialize(
            key, build, quick_check=venvcheck.quick_check, notify=log.reporter.message
        )
    except KilnError as exc:
        digest = _finish(plan, workspace, log, str(exc), row.lock_digest)
        plan.cache.remember_failure(key, str(exc), digest)
        raise
    if built_now:
        _built(plan, workspace, log, row, key, path)
    return _Built(row, key, path, built_now)


def _built(
    plan: Plan, workspace: Workspace, log: BuildLog, row: LockRow, key: str, path: Path
) -> None:
    _finish(plan, workspace, log, None, row.lock_digest)
    plan.cache.forget_failure(key)
    bytecodejob.start(path, venv.interpreter(path), _bytecode_store(plan.cache))


def _first_build(plan: Plan, workspace: Workspace, log: BuildLog) -> _Built:
    """Resolve the first lock under the cache's file lock (checking again inside it, as
    buildlocks.resolve_lock does) and build it: from uv's cached guess while the index is asked
    when there is one (kiln.fastresolve), else after the index answered."""
    name = resolution_name(plan.version, plan.target)
    with plan.cache.lock(name):
        row = fastbuilds.newest_lock(
            plan.connection, build_hash=plan.version.build_hash, platform=plan.target.platform
        )
        if row is None:  # nobody resolved it while this process waited
            failure = plan.cache.recent_failure(name)
            if failure and not plan.retry:  # e.g. by the process this one waited for
                raise resolving_failed(failure)
            log.phase("resolve")
            first = FirstLock(plan, log)
            if first.guess is not None:
                done = _build_guess(plan, workspace, log, first)
                if done is not None:
                    return done
            row = _resolved(plan, workspace, log, first)
    if not buildable_lock(row, plan.pip):
        _refuse_lock(plan, row)
    return _build_row(plan, workspace, log, row)


def _refuse_lock(plan: Plan, row: LockRow) -> None:
    """The full path's refusal of an unsound lock, with its message (a lock uv just resolved
    is sound unless its row was edited meanwhile: this path is rare, so the model is loaded)."""
    from kiln.buildlocks import verify_lock
    from kiln.environment.definition import EnvironmentDefinition

    definition = EnvironmentDefinition.model_validate_json(plan.version.definition)
    verify_lock(row, definition, reference=plan.reference)
    raise KilnError(f"the lock of {plan.reference} does not install its definition's pins")


def _resolved(plan: Plan, workspace: Workspace, log: BuildLog, first: FirstLock) -> LockRow:
    """The index's lock, stored; a failed resolution recorded as the full path records one."""
    try:
        return first.row(log)
    except KilnError as exc:
        _finish(plan, workspace, log, str(exc), None)
        raise


def _build_guess(
    plan: Plan, workspace: Workspace, log: BuildLog, first: FirstLock
) -> _Built | None:
    """Build the guess while the index is asked, and keep it when the index gave the same
    lock; None when it gave another (the caller builds that one)."""
    assert first.guess is not None
    guess, digest = first.guess, lock_digest(first.guess.text)
    key = _key(plan, digest)
    if plan.cache.recent_failure(key) and not plan.retry:
        return None  # the stored lock's build says when it failed
    ctx = _context(plan, digest, key, log)
    log.write(
        "(installing the lock that uv's cached index pages give while uv asks the index; "
        "it is kept only if the index gives the same)\n"
    )

    def confirmed() -> LockRow:
        row = first.row(log)
        if row.lock_digest != digest:
            raise _Contradicted
        return row

    def build(staging: Path) -> dict[str, Any]:
        _install(plan, guess, digest, staging, ctx)
        return _marker_facts(plan, confirmed())

    try:
        path, built_now = plan.cache.materialize(
            key, build, quick_check=venvcheck.quick_check, notify=log.reporter.message
        )
        row = confirmed()  # a ready environment reused: the index must agree all the same
    except _Contradicted:
        log.write("(the index gives another lock: building that one instead)\n")
        return None
    except KilnError as exc:
        # The resolution's own failure first: recorded and remembered as a failed resolution.
        row = _resolved(plan, workspace, log, first)
        if row.lock_digest != digest:
            return None  # the guess failed, but it is not the lock: build the index's
        failed = _finish(plan, workspace, log, str(exc), row.lock_digest)
        plan.cache.remember_failure(key, str(exc), failed)
        raise
    log.write("(the index gives the same lock)\n")
    if built_now:
        _built(plan, workspace, log, row, key, path)
    return _Built(row, key, path, built_now)


def _prepare_the_record() -> None:
    """What the marker and the record need, asked while uv runs: the modules that write the
    record, and ``uv --version`` (remembered by uvtool.uv_version)."""
    for module in ("kiln.accounts", "kiln.artifacts"):
        importlib.import_module(module)
    venv.tool_versions()


def _marker_facts(plan: Plan, lock: LockRow) -> dict[str, Any]:
    return {
        "builder": venv.name,
        "build_hash": plan.version.build_hash,
        "lock_digest": lock.lock_digest,
        "lock_generation": lock.generation,
        "platform": plan.target.platform,
        "python": plan.target.python_version,
        "tools": venv.tool_versions(),
        "seconds": round(time.monotonic() - plan.started, 3),
    }


def _finish(
    plan: Plan,
    workspace: Workspace,
    log: BuildLog,
    error: str | None,
    lock_digest: str | None,
) -> str:
    """Keep the log and record the attempt (as builds._Attempt.finish); returns the log's
    digest."""
    from kiln.accounts import local_actor

    log.write(f"==> {'failed: ' + error if error else 'succeeded'}\n")
    log.close()
    elapsed = time.monotonic() - plan.started
    digest = workspace.artifacts.put_file(log.path)
    with immediate_transaction(plan.connection) as connection:
        fastbuilds.record_build(
            connection,
            build_hash=plan.version.build_hash,
            platform=plan.target.platform,
            lock_digest=lock_digest,
            builder=venv.name,
            machine=socket.gethostname(),
            status="failed" if error else "succeeded",
            error=error,
            log_digest=digest,
            tool_versions=json.dumps(venv.tool_versions()),
            started_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=elapsed),
            duration_ms=int(elapsed * 1000),
            created_by=local_actor(),
        )
    return digest


def _point_warm_path(plan: Plan, lock: LockRow, key: str, path: Path) -> None:
    write_pointer(
        plan.cache.root,
        build_hash=plan.version.build_hash,
        key=key,
        platform=plan.target.platform,
        lock_digest=lock.lock_digest,
        builder=venv.name,
        interpreter=venv.interpreter(path),
        activation=venv.activation(path),
    )
