"""Listing environment versions: the standard-library fast path when it can, else the catalog.

Why here and not in the CLI: the server and the SDK list too, and must get the same rows. The
fast path (registry.fastread, curated index) answers plain listings of the embedded registry
without importing SQLAlchemy or pydantic; a search, a tag filter or PostgreSQL go through the
catalog. Both give rows of the public ``environment-version`` schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiln.environment import ANONYMOUS_NAME

if TYPE_CHECKING:
    from kiln.workspace import Workspace


def list_versions(
    workspace: Workspace,
    *,
    all_versions: bool = False,
    include_archived: bool = False,
    name_contains: str | None = None,
    tags: dict[str, str | None] | None = None,
    include_curated: bool = True,
    include_anonymous: bool = False,
) -> list[dict[str, Any]]:
    """Version summaries ordered by name then registration."""
    if workspace.server_url is not None:
        from kiln import remoteenvs

        filters = remoteenvs.query(
            all_versions=all_versions,
            include_archived=include_archived,
            name_contains=name_contains,
            tags=tags,
            include_curated=include_curated,
            include_anonymous=include_anonymous,
        )
        return remoteenvs.list_versions(workspace, **filters)
    found = _fast(workspace, all_versions, include_archived, include_curated)
    if found is None or name_contains or tags:
        from kiln import catalog

        records = catalog.list_records(
            workspace,
            all_versions=all_versions,
            include_archived=include_archived,
            name_contains=name_contains,
            tags=tags or {},
            include_curated=include_curated,
        )
        found = [r.summary() for r in records]
    if include_anonymous:
        return found
    return [s for s in found if s["name"] != ANONYMOUS_NAME]


def _fast(
    workspace: Workspace, all_versions: bool, include_archived: bool, include_curated: bool
) -> list[dict[str, Any]] | None:
    if not workspace.is_embedded:
        return None
    from kiln.registry.fastread import list_summaries

    rows = list_summaries(
        workspace.registry_file, all_versions=all_versions, include_archived=include_archived
    )
    if rows is None:
        return None
    if not include_curated:
        return rows
    from kiln.curated import indexed_summaries

    return indexed_summaries() + rows
