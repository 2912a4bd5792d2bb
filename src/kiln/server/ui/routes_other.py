"""Models, deployments (their state and log) and the audit trail (admins): ``kiln model list``,
``kiln deploy list`` and ``kiln audit``'s core calls, paged on the server."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response

from kiln import accounts
from kiln.server.auth import Served
from kiln.server.ui.pages import LOG_TAIL, Looker, PageRoute, render
from kiln.server.ui.paging import PAGE_SIZE, Pages, linker, page_number, paged

router = APIRouter(route_class=PageRoute)


@router.get("/models")
def models(request: Request, workspace: Served, viewer: Looker, page: str = "") -> Response:
    from kiln.serving.models import list_models

    errors: dict[str, str] = {}
    rows, pages = paged([r.summary() for r in list_models(workspace, None)], page, errors)
    return render(request, "models.html", rows=rows, pages=pages, query=linker(), errors=errors)


@router.get("/deployments")
def deployments(request: Request, workspace: Served, viewer: Looker, page: str = "") -> Response:
    from kiln.serving.deployments import list_deployments

    errors: dict[str, str] = {}
    rows, pages = paged([r.summary() for r in list_deployments(workspace)], page, errors)
    return render(
        request, "deployments.html", rows=rows, pages=pages, query=linker(), errors=errors
    )


@router.get("/deployments/{name}")
def deployment(request: Request, workspace: Served, viewer: Looker, name: str) -> Response:
    """One deployment: its state (the supervisor's health verdict) and the end of its log."""
    from kiln.serving import deployments

    found = deployments.get(workspace, name).summary()
    log = deployments.logs(workspace, name)
    return render(request, "deployment.html", d=found, log=log[-LOG_TAIL:], cut=len(log) > LOG_TAIL)


def _since(text: str, errors: dict[str, str]) -> dt.datetime | None:
    if not text:
        return None
    try:
        since = dt.datetime.fromisoformat(text)
    except ValueError:
        errors["since"] = f"`since`: {text!r} is not a time; write ISO-8601, e.g. 2026-01-31T12:00"
        return None
    return since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)


@router.get("/audit")
def audit(
    request: Request, workspace: Served, viewer: Looker, since: str = "", page: str = ""
) -> Response:
    accounts.require_admin(viewer.actor)
    errors: dict[str, str] = {}
    number = page_number(page, errors)
    found = accounts.audit_entries(
        workspace, since=_since(since.strip(), errors), limit=PAGE_SIZE + 1,
        offset=(number - 1) * PAGE_SIZE,
    )  # fmt: skip
    rows, pages = found[:PAGE_SIZE], Pages(number, None, len(found) > PAGE_SIZE)
    query = linker(since=since)
    return render(
        request, "audit.html", rows=rows, pages=pages, query=query, errors=errors, since=since
    )
