"""The lock a build installs: the stored one (verified by digest), or resolved once per
(build hash, platform) under a lock and stored in the workspace, where every machine finds it."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from kiln.builders.base import BuildContext, Builder, BuildError, Lock, Target
from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.cache import Cache
    from kiln.catalog import EnvironmentRecord
    from kiln.environment.definition import EnvironmentDefinition
    from kiln.registry.lock_queries import LockRow
    from kiln.workspace import Workspace


class RecentFailure(BuildError):
    """The same build failed moments ago: not run again (and not recorded again, so
    ``kiln env logs`` keeps showing the log of the real attempt)."""


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
) -> tuple[LockRow, LockRow | None]:
    """The lock to build from, resolving (once, under a lock) when there is none or on refresh."""
    from kiln.registry.lock_queries import get_lock

    def newest() -> LockRow | None:
        with workspace.engine.connect() as connection:
            return get_lock(connection, build_hash=build_hash, platform=target.platform)

    current = newest()
    if current is not None and not refresh:
        return current, None
    name = f"resolve-{build_hash[:32]}-{target.platform}"
    with cache.lock(name):
        latest = newest()
        # Check again under the lock: another process may have resolved (or refreshed) meanwhile.
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
        digest = hashlib.sha256(lock.text.encode()).hexdigest()
        if latest is not None and latest.lock_digest == digest:
            return latest, latest  # --refresh found nothing new: keep the generation
        # The generation after the one seen, not max()+1: a machine sharing the workspace may
        # have stored it meanwhile (nothing machine-local serializes us), and then its lock is
        # the one everybody installs rather than a second one stacked on top.
        generation = (latest.generation if latest else 0) + 1
        return _store(workspace, build_hash, target, generation, lock, digest), latest


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
        raise RecentFailure(
            f"resolving failed {time.time() - failure['time']:.0f} s ago: {failure['error']} "
            "(see `kiln env logs`; pass --retry to try again now)"
        )
    ctx.log.phase("resolve")
    try:
        lock = builder.resolve(definition, target, ctx)
    except KilnError as exc:
        cache.remember_failure(name, str(exc), None)
        raise
    cache.forget_failure(name)
    return lock


def _store(
    workspace: Workspace, build_hash: str, target: Target, generation: int, lock: Lock, digest: str
) -> LockRow:
    from kiln.registry.engine import write_transaction
    from kiln.registry.lock_queries import get_lock, insert_lock

    with write_transaction(workspace.engine) as connection:
        insert_lock(
            connection,
            build_hash=build_hash,
            platform=target.platform,
            generation=generation,
            lock_digest=digest,
            lock_format=lock.format,
            lock_text=lock.text,
            packages=lock.packages,
            resolver=lock.resolver,
        )
    with workspace.engine.connect() as connection:
        stored = get_lock(
            connection, build_hash=build_hash, platform=target.platform, generation=generation
        )
    assert stored is not None
    return stored


def stored_lock(
    workspace: Workspace, record: EnvironmentRecord, target: Target, lock_digest: str
) -> LockRow:
    from kiln.registry.lock_queries import list_locks

    with workspace.engine.connect() as connection:
        rows = list_locks(connection, build_hash=record.build_hash)
    for row in rows:
        if row.lock_digest == lock_digest and row.platform == target.platform:
            return row
    raise KilnError(
        f"{record.reference} has no lock {lock_digest[:12]} for {target.platform}; "
        "it was made on another platform, or the workspace lost it"
    )
