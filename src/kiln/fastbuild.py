"""A ``kiln env build`` without SQLAlchemy or pydantic: the common case of a plain pip
definition on the embedded SQLite registry.

Why: such a build is ``uv venv && uv pip sync`` of a known lock plus a health check (preceded,
on the first build, by ``uv pip compile`` of the lock), and the full path spent more time
importing SQLAlchemy and pydantic than uv spent installing. This path reads the version, its
stored definition (JSON), the newest lock and earlier builds with ``sqlite3``
(kiln.registry.fastbuilds), starts ``uv venv`` as soon as the interpreter is known, and
resolves and builds with the venv builder's own functions, so the steps, the stored lock, the
health check, the marker, the build record and the bytecode job are the full path's.

``plan_warm`` answers None for anything else, and the caller takes the full path, which gives
the same result or reports the problem: another registry (PostgreSQL, a server), a schema at
another revision, a definition the venv builder does not build alone (conda packages, docker,
user-managed, local wheels, ``${VAR}`` references, keys it does not know), a stored lock that
fails its check, or a recent failure of the same build or resolution. Like the full path, a
build from a stored lock takes no build lease: a venv stays on this machine, and builds of one
key are serialized by the cache's file lock (kiln.cache.Cache.materialize). A first build
resolves under the same file lock as the full path, without the registry's lease: an embedded
registry is one machine's SQLite file, so the file lock already makes one process of this
machine resolve while the others wait and then read its lock, and storing generation 1 is
one insert that a second resolver (there is none on one machine) would lose.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from kiln.builders import bytecodejob, interpreters, packagecaches, venv, venvcheck, venvcreate
from kiln.builders.base import BuildContext, Lock, Log, Target
from kiln.buildlog import BuildLog, NullLog, Reporter
from kiln.cache import WHEELS_FOLDER, Cache, materialization_key
from kiln.errors import KilnError
from kiln.fastexec import write_pointer
from kiln.registry import fastbuilds
from kiln.registry.lockrow import LockRow
from kiln.registry.readonly import immediate_transaction, open_writable
from kiln.workspace import Workspace

# What a stored definition may hold for this path (defaults are not stored); anything else,
# or a value that needs another builder, takes the full path.
_TOP = {"python", "environment_variables", "inferencing_stack_version", "inference_config"}
_PYTHON = {"version", "pip", "check_imports"}
_PIP = {"packages", "constraints", "index_url", "extra_index_urls", "find_links", "pre"}


class PipIndex(NamedTuple):
    """The index options of a stored definition (venv.IndexOptions)."""

    index_url: str | None
    extra_index_urls: list[str]
    find_links: list[str]
    pre: bool


@dataclass(frozen=True)
class Plan:
    """What a warm build builds, read with the standard library; ``connection`` writes its
    record (closed by ``build_planned``)."""

    connection: sqlite3.Connection
    version: fastbuilds.StoredVersion
    pip: dict[str, Any]
    check_imports: list[str]
    target: Target
    lock: LockRow | None  # None: the build resolves the first lock
    cache: Cache
    started: float  # time.monotonic() when planning began: a build's seconds count from it
    retry: bool

    @property
    def reference(self) -> str:
        return f"{self.version.name}:{self.version.version}"


class WarmBuild(NamedTuple):
    builder: str
    path: Path
    interpreter: Path
    built_now: bool
    seconds: float
    lock: LockRow


def _reference(text: str) -> tuple[str, str | None] | None:
    """(name, version or None for the newest) as catalog.parse_reference reads it, or None for
    what the full path handles (curated names, labels, malformed references)."""
    name, _, version = text.partition(":")
    if not name or "@" in text or ":" in version or name.startswith("Kiln-"):
        return None
    return name, (version or None) if version != "latest" else None


def _plain_pip(text: str, stored: dict[str, Any]) -> bool:
    """Whether the venv builder alone builds this stored definition, needing no secret (its
    pip entries are checked by ``_buildable_lock``)."""
    python, pip = stored.get("python", {}), stored.get("python", {}).get("pip", {})
    if "${" in text or not set(stored) <= _TOP or not isinstance(python, dict):
        return False
    return set(python) <= _PYTHON and isinstance(pip, dict) and set(pip) <= _PIP


def _names_no_local_file(packages: list[str]) -> bool:
    """No pip entry is a local path or wheel (the full path stages those before resolving)."""
    from kiln.builders.plainpins import all_plain

    if all_plain(packages):
        return True
    from kiln.builders.venv import LOCAL_KINDS
    from kiln.environment.packages import parse_pip_entry

    return not any(parse_pip_entry(entry).kind in LOCAL_KINDS for entry in packages)


def _buildable_lock(lock: LockRow, pip: dict[str, Any]) -> bool:
    """No pip entry names a local file (the full path stages those), and buildlocks.lock_problem
    finds nothing: the text is the stored digest's, it parses, and it installs every exact pin
    (the full path reports any problem). Plain pins are checked without ``packaging``."""
    from kiln.builders.plainpins import plain_pins_met

    if hashlib.sha256(lock.lock_text.encode()).hexdigest() != lock.lock_digest:
        return False
    packages, constraints = pip.get("packages", []), pip.get("constraints", [])
    if plain_pins_met(packages, constraints, lock.lock_text):
        return True  # bare names and plain pins name no local file either
    from kiln.builders.lockcheck import pin_problems, read_lock
    from kiln.builders.venv import LOCAL_KINDS
    from kiln.environment.packages import parse_pip_entry

    if any(parse_pip_entry(entry).kind in LOCAL_KINDS for entry in packages):
        return False
    try:
        locked = read_lock(_to_lock(lock))
    except ValueError:
        return False
    return not pin_problems(packages, constraints, [], locked)


def _to_lock(lock: LockRow) -> Lock:
    return Lock(lock.lock_format, lock.lock_text, lock.packages, lock.resolver)


def plan_warm(workspace: Workspace, reference: str, *, retry: bool) -> Plan | None:
    """The plan of a warm build of ``reference``, or None for the full path. Starts ``uv
    venv`` for it when the environment is not built yet (unused, it is removed at exit)."""
    started = time.monotonic()
    parsed = _reference(reference)
    if parsed is None or not workspace.is_embedded:
        return None
    connection = open_writable(workspace.registry_file)
    if connection is None:
        return None
    try:
        plan = _plan(workspace, connection, *parsed, retry=retry, started=started)
    except (sqlite3.Error, ValueError, KeyError, TypeError, AttributeError, KilnError):
        plan = None  # the full path reads the same rows and reports what is wrong
    if plan is None:
        connection.close()
    return plan


def _plan(
    workspace: Workspace,
    connection: sqlite3.Connection,
    name: str,
    version: str | None,
    *,
    retry: bool,
    started: float,
) -> Plan | None:
    found = fastbuilds.find_version(connection, name=name, version=version)
    if found is None:
        return None
    stored = json.loads(found.definition)
    if not isinstance(stored, dict) or not _plain_pip(found.definition, stored):
        return None
    python = stored.get("python", {})
    cache = Cache(workspace.cache_root)
    target = interpreters.find(
        python.get("version"),
        cache.uv_cache,
        downloads=workspace.setting("python_downloads") == "automatic",
        mirror=workspace.setting("python_mirror"),
    )
    lock = fastbuilds.newest_lock(connection, build_hash=found.build_hash, platform=target.platform)
    pip, imports = python.get("pip", {}), list(python.get("check_imports", []))
    prepared = BuildContext(NullLog(), cache.uv_cache, {})
    if lock is None:  # the first build: it resolves
        if cache.recent_failure(_resolution(found, target)) and not retry:
            return None  # the full path says when and why resolving failed
        if not _names_no_local_file(list(pip.get("packages", []))):
            return None  # the full path stages local files first
        venvcreate.prepare(target, prepared)  # uv makes the venv while the rest is read
        return Plan(connection, found, pip, imports, target, None, cache, started, retry)
    key = materialization_key(venv.name, found.build_hash, lock.lock_digest, target.platform)
    if cache.recent_failure(key) and not retry:
        return None  # the full path says when and why it failed
    if cache.marker(key) is None:  # uv makes the venv while the lock is checked
        venvcreate.prepare(target, prepared)
    if not _buildable_lock(lock, pip):
        venvcreate.discard(target, prepared)  # the full path stages wheels, or refuses the lock
        return None
    return Plan(connection, found, pip, imports, target, lock, cache, started, retry)


def _resolution(version: fastbuilds.StoredVersion, target: Target) -> str:
    """The name of the cache's lock (and remembered failure) of resolving this build, as
    buildlocks.resolve_lock names it."""
    return f"resolve-{version.build_hash[:32]}-{target.platform}"


def _index(pip: dict[str, Any]) -> PipIndex:
    return PipIndex(
        pip.get("index_url"),
        list(pip.get("extra_index_urls", [])),
        list(pip.get("find_links", [])),
        bool(pip.get("pre", False)),
    )


def _resolve(plan: Plan, log: Log) -> LockRow:
    """The first lock of ``plan``'s build, resolved and stored as buildlocks.resolve_lock does
    (under the cache's file lock, checking again inside it), then checked as a stored one."""
    version, target, cache = plan.version, plan.target, plan.cache
    name = _resolution(version, target)
    with cache.lock(name):
        row = fastbuilds.newest_lock(
            plan.connection, build_hash=version.build_hash, platform=target.platform
        )
        if row is None:  # nobody resolved it while this process waited
            log.phase("resolve")
            context = BuildContext(log, cache.uv_cache, {})
            packages, constraints = plan.pip.get("packages", []), plan.pip.get("constraints", [])
            try:
                lock = venv.resolve_pip(
                    list(packages), list(constraints), _index(plan.pip), target, context
                )
            except KilnError as exc:
                cache.remember_failure(name, str(exc), None)
                raise
            cache.forget_failure(name)
            with immediate_transaction(plan.connection) as connection:
                fastbuilds.insert_lock(
                    connection,
                    build_hash=version.build_hash,
                    platform=target.platform,
                    generation=1,
                    lock_digest=hashlib.sha256(lock.text.encode()).hexdigest(),
                    lock_format=lock.format,
                    lock_text=lock.text,
                    packages=lock.packages,
                    resolver=lock.resolver,
                )
            row = fastbuilds.newest_lock(
                plan.connection, build_hash=version.build_hash, platform=target.platform
            )
    assert row is not None
    if not _buildable_lock(row, plan.pip):
        _refuse_lock(plan, row)
    return row


def _refuse_lock(plan: Plan, row: LockRow) -> None:
    """The full path's refusal of an unsound lock, with its message (a lock uv just resolved
    is sound unless its row was edited meanwhile: this path is rare, so the model is loaded)."""
    from kiln.buildlocks import verify_lock
    from kiln.environment.definition import EnvironmentDefinition

    definition = EnvironmentDefinition.model_validate_json(plan.version.definition)
    verify_lock(row, definition, reference=plan.reference)
    raise KilnError(f"the lock of {plan.reference} does not install its definition's pins")


def _bytecode_store(cache: Cache) -> Path:
    return cache.root / packagecaches.BYTECODE


def _context(
    cache: Cache,
    version: fastbuilds.StoredVersion,
    lock: LockRow,
    key: str,
    log: Log,
) -> BuildContext:
    """The full path's context for a venv build of a stored lock with no local wheels and no
    secrets (ensure_built's, then _materialize's additions)."""
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
            "io.kiln.lock-digest": lock.lock_digest,
            "io.kiln.definition-digest": version.definition_digest,
        },
    )


def build_planned(plan: Plan, workspace: Workspace, reporter: Reporter) -> WarmBuild:
    """Reuse or build ``plan``'s environment as ensure_built does, then point the warm exec
    path at it. A failure is recorded and remembered, as there, and raised."""
    started = plan.started
    cache = plan.cache
    log_path = cache.root / "tmp" / f"log.{os.getpid()}.{uuid.uuid4().hex[:8]}.log"
    log = BuildLog(log_path, reporter)

    def build(staging: Path) -> dict[str, Any]:
        checked = fastbuilds.built_before(
            plan.connection,
            build_hash=plan.version.build_hash,
            lock_digest=row.lock_digest,
            builder=venv.name,
            platform=plan.target.platform,
        )
        lock, context = _to_lock(row), replace(ctx, lock_checked=checked)
        # From here the main thread mostly waits for uv, so this costs the build no time.
        threading.Thread(target=_prepare_the_record, name="kiln-record", daemon=True).start()
        venv.build_locked(
            lock,
            plan.target,
            staging,
            context,
            index=_index(plan.pip),
            check_imports=plan.check_imports,
        )
        return _marker_facts(plan, row, started)

    try:
        with packagecaches.in_use(cache.root):
            try:
                row = plan.lock or _resolve(plan, log)
            except KilnError as exc:  # recorded as the full path records a failed resolution
                _finish(plan, workspace, log, started, str(exc), lock_digest=None)
                raise
            key = materialization_key(
                venv.name, plan.version.build_hash, row.lock_digest, plan.target.platform
            )
            ctx = _context(cache, plan.version, row, key, log)
            try:
                path, built_now = cache.materialize(
                    key, build, quick_check=venvcheck.quick_check, notify=reporter.message
                )
            except KilnError as exc:
                digest = _finish(plan, workspace, log, started, str(exc), row.lock_digest)
                cache.remember_failure(key, str(exc), digest)
                raise
            if built_now:
                _finish(plan, workspace, log, started, None, row.lock_digest)
                cache.forget_failure(key)
                bytecodejob.start(path, venv.interpreter(path), _bytecode_store(cache))
    finally:
        plan.connection.close()
        log.close()
        if log.opened:
            log.path.unlink(missing_ok=True)
    _point_warm_path(plan, row, key, path)
    seconds = time.monotonic() - started
    return WarmBuild(venv.name, path, venv.interpreter(path), built_now, seconds, row)


def _prepare_the_record() -> None:
    """What the marker and the record need, asked while uv runs: the modules that write the
    record, and ``uv --version`` (remembered by uvtool.uv_version)."""
    for module in ("kiln.accounts", "kiln.artifacts"):
        importlib.import_module(module)
    venv.tool_versions()


def _marker_facts(plan: Plan, lock: LockRow, started: float) -> dict[str, Any]:
    return {
        "builder": venv.name,
        "build_hash": plan.version.build_hash,
        "lock_digest": lock.lock_digest,
        "lock_generation": lock.generation,
        "platform": plan.target.platform,
        "python": plan.target.python_version,
        "tools": venv.tool_versions(),
        "seconds": round(time.monotonic() - started, 3),
    }


def _finish(
    plan: Plan,
    workspace: Workspace,
    log: BuildLog,
    started: float,
    error: str | None,
    lock_digest: str | None,
) -> str:
    """Keep the log and record the attempt (as builds._Attempt.finish); returns the log's
    digest."""
    from kiln.accounts import local_actor

    log.write(f"==> {'failed: ' + error if error else 'succeeded'}\n")
    log.close()
    elapsed = time.monotonic() - started
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
