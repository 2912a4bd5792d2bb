"""``/api/v1/environments``: register, list, show, archive, restore, tag; the same core calls
as ``kiln env``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from kiln import catalog
from kiln.envdetail import shown, shown_definition, shown_named
from kiln.environment import ANONYMOUS_NAME
from kiln.envlist import list_page
from kiln.schemas.environments import (
    ArchiveResult,
    EnvironmentDetail,
    EnvironmentVersion,
    ListedVersion,
    RegisteredVersion,
)
from kiln.server.answers import json_answer
from kiln.server.auth import Reader, Served, Writer
from kiln.server.paging import Page, paged_answer
from kiln.server.routes_artifacts import Store
from kiln.serverinputs import check_stored
from kiln.workspace import Workspace

router = APIRouter(prefix="/environments", tags=["environments"])


def _tags(pairs: list[str]) -> dict[str, str | None]:
    return {p.split("=", 1)[0]: (p.split("=", 1)[1] if "=" in p else None) for p in pairs}


@router.get("", response_model=list[ListedVersion], response_model_exclude_unset=True)
def list_environments(
    workspace: Served,
    actor: Reader,
    paging: Page,
    search: str | None = None,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults per request
    all_versions: bool = False,
    archived: bool = False,
    curated: bool = True,
    anonymous: bool = False,
    definitions: bool = False,
) -> Response:
    """Latest versions (``all_versions`` for every one), ordered by name then registration;
    ``X-Total-Count`` holds the number before paging. ``definitions`` adds each definition."""
    filters: dict[str, Any] = {
        "all_versions": all_versions,
        "include_archived": archived,
        "name_contains": search,
        "tags": _tags(tag),
        "include_curated": curated,
    }
    if definitions:
        records = catalog.list_records(workspace, **filters)
        every = [
            {**r.summary(), "definition": shown_definition(r)}
            for r in records
            if anonymous or r.name != ANONYMOUS_NAME
        ]
        total, rows = len(every), every[paging.offset : paging.offset + paging.limit]
    else:
        total, rows = list_page(
            workspace, limit=paging.limit, offset=paging.offset, include_anonymous=anonymous,
            **filters,
        )  # fmt: skip
    return paged_answer(rows, total)


@router.post("", response_model=RegisteredVersion)
def register(
    workspace: Served,
    actor: Writer,
    store: Store,
    response: Response,
    definition: Annotated[dict[str, Any], Body()],
    name: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Register a definition in Kiln's JSON form; same content keeps its version (200), a new
    version answers 201."""
    from kiln.environment.validation import assign
    from kiln.formats.kiln_yaml import from_data

    parsed = from_data(definition, source="the request body", keep_digests=True)
    if name is not None:
        assign(parsed, "name", name)
    if version is not None:
        assign(parsed, "version", version)
    check_stored(parsed, store)  # the digests name content the store holds, checked there
    result = catalog.register(workspace, parsed, actor=actor, inputs_checked=True)
    response.status_code = 201 if result.created else 200
    shared = catalog.same_build(workspace, result.record)
    return {**result.record.summary(), "created": result.created, "same_build_as": shared}


async def _detail(workspace: Workspace, name: str, version: str | None, digests: bool) -> Response:
    # The embedded registry answers in about half a millisecond of CPU, less than the hop to a
    # worker thread costs (measured: 0.9 against 1.5 ms of server CPU per get), so it runs on
    # the event loop; a database server's round trips go to a thread and never block the loop.
    if workspace.is_embedded and not digests:
        return _detail_answer(workspace, name, version, digests)
    return await run_in_threadpool(_detail_answer, workspace, name, version, digests)


def _detail_answer(workspace: Workspace, name: str, version: str | None, digests: bool) -> Response:
    if digests:  # a client about to build: the definition with its local files' digests
        record = catalog.get(workspace, name, version)
        found = shown(workspace, record)
        definition = shown_definition(record, digests=True)
    else:
        found = shown_named(workspace, name, version)
        definition = found.definition
    return json_answer(
        {**found.summary, "same_build_as": found.same_build_as, "definition": definition}
    )


# exclude_unset: like `env show --json` without --build or --runs, no build or runs keys
@router.get("/{name}", response_model=EnvironmentDetail, response_model_exclude_unset=True)
async def show_latest(
    workspace: Served, actor: Reader, name: str, digests: bool = False
) -> Response:
    """The latest unarchived version, as ``kiln env show NAME --json``; ``digests`` adds the
    sha256 of its local files, by which a client fetches them from the artifact store."""
    return await _detail(workspace, name, None, digests)


@router.get(
    "/{name}/versions/{version}",
    response_model=EnvironmentDetail,
    response_model_exclude_unset=True,
)
async def show_version(
    workspace: Served, actor: Reader, name: str, version: str, digests: bool = False
) -> Response:
    return await _detail(workspace, name, version, digests)


def _set_archived(
    workspace: Any, actor: Any, name: str, version: str | None, archived: bool
) -> dict[str, Any]:
    count = catalog.set_archived(workspace, name, version, archived=archived, actor=actor)
    return {"name": name, "version": version, "archived": archived, "versions_changed": count}


@router.post("/{name}/archive", response_model=ArchiveResult)
def archive(
    workspace: Served, actor: Writer, name: str, version: str | None = None
) -> dict[str, Any]:
    """Archive one version, or every version of the name."""
    return _set_archived(workspace, actor, name, version, True)


@router.post("/{name}/restore", response_model=ArchiveResult)
def restore(
    workspace: Served, actor: Writer, name: str, version: str | None = None
) -> dict[str, Any]:
    return _set_archived(workspace, actor, name, version, False)


class TagChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: dict[str, str] = {}
    remove: list[str] = []


@router.post("/{name}/versions/{version}/tags", response_model=EnvironmentVersion)
def tag(
    workspace: Served, actor: Writer, name: str, version: str, change: TagChange
) -> dict[str, Any]:
    record = catalog.set_tags(
        workspace, name, version, add=change.add, remove=change.remove, actor=actor
    )
    return record.summary()
