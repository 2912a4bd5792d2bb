"""The machine-local build cache as a whole: what it holds, garbage collection and verification.

The policy: least recently used builds go first (everything unused for ``older_than``, then
more until the rest fits in ``max_size``), a build a live process holds is never removed, and
package caches (uv's, conda's, shared bytecode) are reclaimed only of what no remaining build
links and only while no build is using them. The CLI (``kiln cache``) parses, calls and prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.cache import Cache, Entry, select_for_gc

if TYPE_CHECKING:
    from collections.abc import Callable

    from kiln.catalog import EnvironmentRecord
    from kiln.workspace import Workspace


@dataclass(frozen=True)
class CachedBuild:
    """One ready build on this machine and the versions (registered or curated) that use it."""

    entry: Entry
    environments: list[str]  # NAME:VERSION references


@dataclass(frozen=True)
class GcReport:
    """What ``collect`` removed (or, with ``dry_run``, would remove)."""

    removed: list[Entry]
    package_caches: dict[str, int | None] | None  # bytes per cache (None: not estimated);
    # None as a whole: a running build is using them, so they were left alone
    dry_run: bool

    @property
    def builds_freed_bytes(self) -> int:
        return sum(entry.size for entry in self.removed)

    @property
    def package_caches_freed_bytes(self) -> int:
        return sum(size or 0 for size in (self.package_caches or {}).values())

    @property
    def freed_bytes(self) -> int:
        return self.builds_freed_bytes + self.package_caches_freed_bytes


@dataclass(frozen=True)
class Verified:
    """The health of one cached build: ``problem`` is None when healthy."""

    key: str
    problem: str | None

    @property
    def healthy(self) -> bool:
        return self.problem is None


def versions_by_build(workspace: Workspace) -> dict[str, list[EnvironmentRecord]]:
    """Build hash -> the versions (registered and curated, archived too) that use it."""
    from kiln import catalog

    records = catalog.list_records(workspace, all_versions=True, include_archived=True)
    users: dict[str, list[EnvironmentRecord]] = {}
    for record in records:
        users.setdefault(record.build_hash, []).append(record)
    return users


def cached_builds(workspace: Workspace, cache: Cache) -> list[CachedBuild]:
    """Every ready build, least recently used first, with the versions that use it."""
    users = versions_by_build(workspace)
    return [
        CachedBuild(e, [r.reference for r in users.get(e.marker.get("build_hash", ""), [])])
        for e in cache.entries()
    ]


def collect(
    cache: Cache, *, max_size: int | None, older_than: float | None, dry_run: bool = False
) -> GcReport:
    """Remove least recently used builds per the policy above, then what the package caches
    hold for nobody. ``max_size`` in bytes, ``older_than`` in seconds; with neither, every build
    stays and only what no build uses goes."""
    from kiln.builders.packagecaches import reclaim

    entries = cache.entries()
    chosen = (
        []
        if max_size is None and older_than is None
        else select_for_gc(entries, max_size=max_size, older_than=older_than)
    )
    removed = [e for e in chosen if dry_run or _remove(cache, e)]
    if not dry_run:
        cache.clean_temporary()
    gone = {e.key for e in removed}
    packages = reclaim(
        cache.root,
        [e.path for e in entries if e.key not in gone],
        dry_run=dry_run,
        dropped=[e.path for e in removed],
    )
    return GcReport(removed, packages, dry_run)


def _remove(cache: Cache, entry: Entry) -> bool:
    """Remove one build; one whose builder refuses (an image a container still uses) stays."""
    from kiln.errors import KilnError

    try:
        return cache.remove(entry.key, release=_release(entry))
    except KilnError:
        return False


def _release(entry: Entry) -> Callable[[Path], None] | None:
    """What the entry's builder removes besides the folder (None for an unknown builder)."""
    from kiln.builders import choice

    builder = choice.BUILDERS.get(str(entry.marker.get("builder")))
    return builder.remove if builder is not None else None


def verify(workspace: Workspace, cache: Cache) -> list[Verified]:
    """Re-run the health check of every ready build. The full check needs the definition
    (which packages to import); a build no version uses any more gets the cheap one."""
    from kiln.builders import choice

    users = versions_by_build(workspace)
    results = []
    for entry in cache.entries():
        builder = choice.get(str(entry.marker.get("builder")))
        records = users.get(entry.marker.get("build_hash", ""))
        problem = (
            builder.health_check(entry.path, records[0].definition)
            if records
            else builder.quick_check(entry.path)
        )
        results.append(Verified(entry.key, problem))
    return results
