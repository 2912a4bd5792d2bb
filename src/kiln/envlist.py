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
    # A search or a tag filter is a query of the catalog's: the fast path would read every row.
    found = (
        None
        if name_contains or tags
        else _fast(workspace, all_versions, include_archived, include_curated)
    )
    if found is None:
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


def list_page(
    workspace: Workspace, *, limit: int, offset: int = 0, **filters: Any
) -> tuple[int, list[dict[str, Any]]]:
    """(how many rows ``list_versions(workspace, **filters)`` would answer, those from
    ``offset``, at most ``limit``), paged by the database: only the page's rows are read, with
    their tags. Why not slice ``list_versions``: a server lists 1,000 of 10,000 per request."""
    assert workspace.server_url is None, "a remote workspace pages through its server"
    from kiln import curated

    search, tags = filters.get("name_contains"), filters.get("tags")
    found: list[dict[str, Any]] = []
    if filters.get("include_curated", True) and (search or tags):  # as the catalog filters
        from kiln.catalog import matching_curated

        found = [r.summary() for r in matching_curated(None, search, tags)]
    elif filters.get("include_curated", True):
        found = curated.indexed_summaries()
    anonymous = filters.get("include_anonymous", False)
    found = [s for s in found if anonymous or s["name"] != ANONYMOUS_NAME]
    window = found[offset : offset + limit]
    stored = {
        "all_versions": filters.get("all_versions", False),
        "include_archived": filters.get("include_archived", False),
        "without_name": None if anonymous else ANONYMOUS_NAME,
        "limit": limit - len(window),
        "offset": max(0, offset - len(found)),
    }
    total, rows = _stored_page(workspace, search, tags, stored)
    return len(found) + total, window + rows


def _stored_page(
    workspace: Workspace,
    search: str | None,
    tags: dict[str, str | None] | None,
    stored: dict[str, Any],
) -> tuple[int, list[dict[str, Any]]]:
    """The registry's part of a page: the fast path when it can, else the catalog."""
    if workspace.is_embedded and not search and not tags:
        from kiln.registry.fastread import list_page as fast_page

        found = fast_page(workspace.registry_file, **stored)
        if found is not None:
            return found
    from kiln.catalog import summaries_page

    return summaries_page(workspace, name_contains=search, tags=tags, **stored)
