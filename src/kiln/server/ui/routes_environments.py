"""Environments: the list (search, tag filter, paging), one version (definition, lock, diff,
builds and their log, who registered it, the runs that used it) and its write forms."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse

from kiln import catalog
from kiln.envlist import list_versions
from kiln.errors import KilnError
from kiln.server.auth import Served
from kiln.server.ui import versionview
from kiln.server.ui.pages import Looker, PageRoute, checked_form, one_line, render
from kiln.server.ui.paging import linker, paged

router = APIRouter(route_class=PageRoute)


def _tag_filter(text: str, errors: dict[str, str]) -> dict[str, str | None]:
    """``KEY`` or ``KEY=VALUE``, as ``kiln env list --tag`` takes it."""
    if not text:
        return {}
    key, has_value, value = text.partition("=")
    if not key.strip():
        errors["tag"] = f"`tag`: {text!r} names no tag; write KEY or KEY=VALUE"
        return {}
    return {key.strip(): value if has_value else None}


@router.get("/environments")
def environments(
    request: Request,
    workspace: Served,
    viewer: Looker,
    search: str = "",
    tag: str = "",
    archived: str = "",
    page: str = "",
) -> Response:
    errors: dict[str, str] = {}
    found = list_versions(
        workspace,
        name_contains=search.strip() or None,
        tags=_tag_filter(tag.strip(), errors),
        include_archived=bool(archived),
    )
    shown, pages = paged(found, page, errors)
    hashes = {row["build_hash"] for row in shown}  # versions often share a build: asked once
    builds = {h: versionview.latest_per_platform(workspace, h) for h in hashes}
    rows = [{**row, "builds": builds[row["build_hash"]]} for row in shown]
    query = linker(search=search, tag=tag, archived=archived)
    return render(
        request, "environments.html", rows=rows, pages=pages, query=query, errors=errors,
        search=search, tag=tag, archived=archived,
    )  # fmt: skip


@router.get("/environments/{name}")
def latest(workspace: Served, viewer: Looker, name: str) -> Response:
    record = catalog.get(workspace, name)
    return RedirectResponse(versionview.address(record.name, record.version), 303)


@router.get("/environments/{name}/versions/{version}")
def version_page(
    request: Request, workspace: Served, viewer: Looker, name: str, version: str, against: str = ""
) -> Response:
    record = catalog.get(workspace, name, version)
    errors: dict[str, str] = {}
    context = versionview.context(workspace, record, against.strip(), errors)
    return render(request, "version.html", errors=errors, against=against, **context)


@router.get("/environments/{name}/versions/{version}/log", response_class=PlainTextResponse)
def build_log(workspace: Served, viewer: Looker, name: str, version: str) -> str:
    """The full log of the latest build, as ``kiln env logs`` prints it."""
    from kiln.buildinfo import logged_build

    attempt = logged_build(workspace, catalog.get(workspace, name, version))
    assert attempt.log is not None
    return attempt.log.read_text(encoding="utf-8", errors="replace")


async def _write(
    request: Request, workspace: Any, viewer: Any, name: str, version: str, field: str, change: Any
) -> Response:
    """Check the form, make the change through the catalog; a refusal is shown beside the
    field on the same page, with the change not made."""
    form = await checked_form(request, viewer)
    try:
        change(form)
    except KilnError as exc:
        record = catalog.get(workspace, name, version)
        errors = {field: one_line(str(exc))}
        context = versionview.context(workspace, record, "", errors)
        return render(request, "version.html", exc.status, errors=errors, against="", **context)
    return RedirectResponse(versionview.address(name, version), 303)


@router.post("/environments/{name}/versions/{version}/archive")
async def archive(
    request: Request, workspace: Served, viewer: Looker, name: str, version: str
) -> Response:
    def change(form: dict[str, str]) -> None:
        wanted = form.get("archived") == "true"
        catalog.set_archived(workspace, name, version, archived=wanted, actor=viewer.actor)

    return await _write(request, workspace, viewer, name, version, "archive", change)


@router.post("/environments/{name}/versions/{version}/tags")
async def add_tag(
    request: Request, workspace: Served, viewer: Looker, name: str, version: str
) -> Response:
    def change(form: dict[str, str]) -> None:
        key, value = versionview.parse_tag(form.get("new_tag", ""))
        catalog.set_tags(workspace, name, version, add={key: value}, remove=[], actor=viewer.actor)

    return await _write(request, workspace, viewer, name, version, "new_tag", change)
