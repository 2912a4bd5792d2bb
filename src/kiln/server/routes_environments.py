"""``/api/v1/environments``: register, list, show, archive, restore, tag; the same core calls
as ``kiln env``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict

from kiln import catalog
from kiln.envdetail import shown, shown_definition
from kiln.environment import ANONYMOUS_NAME
from kiln.envlist import list_versions
from kiln.errors import InvalidDefinition
from kiln.schemas.environments import (
    ArchiveResult,
    EnvironmentDetail,
    EnvironmentVersion,
    ListedVersion,
    RegisteredVersion,
)
from kiln.server.auth import Reader, Served, Writer
from kiln.server.paging import Page, page

router = APIRouter(prefix="/environments", tags=["environments"])


def _tags(pairs: list[str]) -> dict[str, str | None]:
    return {p.split("=", 1)[0]: (p.split("=", 1)[1] if "=" in p else None) for p in pairs}


@router.get("", response_model=list[ListedVersion], response_model_exclude_unset=True)
def list_environments(
    workspace: Served,
    actor: Reader,
    response: Response,
    paging: Page,
    search: str | None = None,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults per request
    all_versions: bool = False,
    archived: bool = False,
    curated: bool = True,
    anonymous: bool = False,
    definitions: bool = False,
) -> list[dict[str, Any]]:
    """Latest versions (``all_versions`` for every one), ordered by name then registration;
    ``X-Total-Count`` holds the number before paging. ``definitions`` adds each definition."""
    if definitions:
        records = catalog.list_records(
            workspace,
            all_versions=all_versions,
            include_archived=archived,
            name_contains=search,
            tags=_tags(tag),
            include_curated=curated,
        )
        return page(
            [
                {**r.summary(), "definition": shown_definition(r)}
                for r in records
                if anonymous or r.name != ANONYMOUS_NAME
            ],
            paging,
            response,
        )
    found = list_versions(
        workspace,
        all_versions=all_versions,
        include_archived=archived,
        name_contains=search,
        tags=_tags(tag),
        include_curated=curated,
        include_anonymous=anonymous,
    )
    return page(found, paging, response)


def _refuse_local_files(definition: Any) -> None:
    from kiln.environment.packages import parse_pip_entry

    pip = definition.python.pip
    if definition.docker.context_folder or any(
        parse_pip_entry(e).kind == "path" for e in [*pip.packages, *pip.constraints]
    ):
        raise InvalidDefinition(
            "the definition names local files or a build context folder, which a request "
            "cannot carry; store wheels with `kiln wheel add` and name them wheel:FILE, and give "
            "a build context as a git URL"
        )


@router.post("", response_model=RegisteredVersion)
def register(
    workspace: Served,
    actor: Writer,
    response: Response,
    definition: Annotated[dict[str, Any], Body()],
    name: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Register a definition in Kiln's JSON form; same content keeps its version (200), a new
    version answers 201."""
    from kiln.environment.validation import assign
    from kiln.formats.kiln_yaml import from_data

    parsed = from_data(definition, source="the request body")
    if name is not None:
        assign(parsed, "name", name)
    if version is not None:
        assign(parsed, "version", version)
    _refuse_local_files(parsed)
    result = catalog.register(workspace, parsed, actor=actor)
    response.status_code = 201 if result.created else 200
    shared = catalog.same_build(workspace, result.record)
    return {**result.record.summary(), "created": result.created, "same_build_as": shared}


def _detail(workspace: Any, name: str, version: str | None) -> dict[str, Any]:
    found = shown(workspace, catalog.get(workspace, name, version))
    return {**found.summary, "same_build_as": found.same_build_as, "definition": found.definition}


# exclude_unset: like `env show --json` without --build or --runs, no build or runs keys
@router.get("/{name}", response_model=EnvironmentDetail, response_model_exclude_unset=True)
def show_latest(workspace: Served, actor: Reader, name: str) -> dict[str, Any]:
    """The latest unarchived version, as ``kiln env show NAME --json``."""
    return _detail(workspace, name, None)


@router.get(
    "/{name}/versions/{version}",
    response_model=EnvironmentDetail,
    response_model_exclude_unset=True,
)
def show_version(workspace: Served, actor: Reader, name: str, version: str) -> dict[str, Any]:
    return _detail(workspace, name, version)


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
