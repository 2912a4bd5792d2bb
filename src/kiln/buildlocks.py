"""The lock a build installs: the stored one, or resolved once per (build hash, platform) under
a lock and stored in the workspace, where every machine finds it. Anyone who can write the
workspace can edit a lock row, so every lock is verified before a build installs it: its text
against its recorded digest, then against the definition's exact pins (``verify_lock``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kiln.builders.base import BuildContext, Builder, Lock, Target
from kiln.builders.lockcheck import pin_mismatches, read_lock
from kiln.buildfailures import RecentFailure as RecentFailure
from kiln.buildfailures import resolving_failed
from kiln.cache import resolution_key
from kiln.errors import KilnError, WorkspaceError
from kiln.registry.lockrow import lock_digest

if TYPE_CHECKING:
    from kiln.cache import Cache
    from kiln.catalog import EnvironmentRecord
    from kiln.environment.definition import EnvironmentDefinition
    from kiln.registry.lock_queries import LockRow
    from kiln.workspace import Workspace


class InvalidLock(WorkspaceError):
    """A stored lock that must not be installed: changed after it was stored, corrupt, or
    contradicting the definition's pins. Nothing was installed or recorded as built."""

    one_line = True


def lock_problem(row: LockRow, definition: EnvironmentDefinition) -> str | None:
    """Why ``row`` must not be installed for ``definition``, or None when it is sound."""
    digest = lock_digest(row.lock_text)
    if digest != row.lock_digest:
        return (
            f"was changed after it was stored (its text has sha256 {digest[:12]}, its "
            f"lock_digest says {row.lock_digest[:12]})"
        )
    try:
        locked = read_lock(Lock(row.lock_format, row.lock_text, row.packages, row.resolver))
    except ValueError as exc:
        return f"is corrupt: {exc}"
    problems = pin_mismatches(definition, locked)
    if problems:
        return f"contradicts the definition's exact pins: {'; '.join(problems)}"
    return None


def verify_lock(row: LockRow, definition: EnvironmentDefinition, *, reference: str) -> LockRow:
    """``row`` when it is sound, else InvalidLock naming the lock and the fix."""
    problem = lock_problem(row, definition)
    if problem is None:
        return row
    raise InvalidLock(
        f"the lock of build {row.build_hash[:12]} for {row.platform}, generation "
        f"{row.generation}, {problem}; nothing was installed: `kiln env build {reference} "
        "--refresh` makes a new generation from the definition"
    )


def resolve_lock(
    workspace: Workspace,
    cache: Cache,
    builder: Builder,
    definition: EnvironmentDefinition,
    build_hash: str,
    target: Target,
    ctx: BuildContext,
    *,
    refresh: bool,
    retry: bool,
    claim: Callable[[], None] = lambda: None,
) -> tuple[LockRow, LockRow | None]:
    """The lock to build from, resolving (once, under a lock) when there is none or on refresh.
    ``claim`` is called before resolving: it takes the build's lease, which may mean waiting
    for another machine that resolves the same lock."""
    from kiln.buildstore import open_build_store

    store = open_build_store(workspace)

    def newest() -> LockRow | None:
        return store.get_lock(build_hash=build_hash, platform=target.platform)

    current = newest()
    if current is not None and not refresh:
        return current, None
    name = resolution_key(build_hash, target.platform)
    claim()  # before the file lock: leases are always taken before any file lock, never after
    with cache.lock(name):
        latest = newest()
        # Check again under the lock: another process or machine may have resolved (or
        # refreshed) meanwhile, perhaps the one whose lease claim() waited for.
        if latest is not None and not refresh:
            return latest, None
        if (
            refresh
            and latest is not None
            and current is not None
            and latest.generation > current.generation
        ):
            return latest, current
        lock = _resolve_now(cache, name, builder, definition, target, ctx, retry=retry)
        digest = lock_digest(lock.text)
        # --refresh found nothing new: keep the generation, unless its row was edited after it
        # was stored; then the resolution is stored again, as the one everybody installs.
        sound = latest is not None and lock_problem(latest, definition) is None
        if latest is not None and latest.lock_digest == digest and sound:
            return latest, latest
        # The generation after the one seen, not max()+1: a machine sharing the workspace may
        # have stored it meanwhile (nothing machine-local serializes us), and then its lock is
        # the one everybody installs rather than a second one stacked on top.
        generation = (latest.generation if latest else 0) + 1
        return _store(workspace, build_hash, target, generation, lock), latest


def _resolve_now(
    cache: Cache,
    name: str,
    builder: Builder,
    definition: EnvironmentDefinition,
    target: Target,
    ctx: BuildContext,
    *,
    retry: bool,
) -> Lock:
    """Ask the builder to resolve, unless the same resolution failed moments ago."""
    failure = cache.recent_failure(name)
    if failure and not retry:
        raise resolving_failed(failure)
    ctx.log.phase("resolve")
    try:
        lock = builder.resolve(definition, target, ctx)
    except KilnError as exc:
        cache.remember_failure(name, str(exc), None)
        raise
    cache.forget_failure(name)
    return lock


def _store(
    workspace: Workspace, build_hash: str, target: Target, generation: int, lock: Lock
) -> LockRow:
    from kiln.buildstore import open_build_store

    store = open_build_store(workspace)
    store.insert_lock(  # False: another machine stored this generation first; read theirs
        build_hash=build_hash,
        platform=target.platform,
        generation=generation,
        lock_format=lock.format,
        lock_text=lock.text,
        packages=lock.packages,
        resolver=lock.resolver,
    )
    stored = store.get_lock(build_hash=build_hash, platform=target.platform, generation=generation)
    assert stored is not None
    return stored


def stored_lock(
    workspace: Workspace, record: EnvironmentRecord, target: Target, lock_digest: str
) -> LockRow:
    """The stored generation with ``lock_digest``, verified; the newest sound one when
    ``--refresh`` stored the same resolution again after a row was edited."""
    from kiln.buildstore import open_build_store

    rows = open_build_store(workspace).list_locks(build_hash=record.build_hash)
    found = [r for r in rows if r.lock_digest == lock_digest and r.platform == target.platform]
    sound = [r for r in found if lock_problem(r, record.definition) is None]
    if sound or found:
        row = (sound or found)[-1]
        return verify_lock(row, record.definition, reference=record.reference)
    raise KilnError(
        f"{record.reference} has no lock {lock_digest[:12]} for {target.platform}; "
        "it was made on another platform, or the workspace lost it"
    )
