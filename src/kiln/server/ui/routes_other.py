"""Models, deployments (their state and log, and a test request) and the audit trail (admins): ``kiln model list``,
``kiln deploy list`` and ``kiln audit``'s core calls, paged on the server."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response

from kiln import accounts
from kiln.errors import Conflict, Forbidden, KilnError
from kiln.server.auth import Served
from kiln.server.ui.pages import LOG_TAIL, Looker, PageRoute, checked_form, one_line, render
from kiln.server.ui.paging import PAGE_SIZE, Pages, linker, page_number, paged

router = APIRouter(route_class=PageRoute)
EXAMPLE_BODY = '{"data": [[1, 2, 3]]}'


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


def _deployment_page(
    request: Request, workspace: Any, name: str, status: int = 200, **sent: Any
) -> Response:
    from kiln.serving import deployments

    found = deployments.get(workspace, name).summary()
    try:
        log = deployments.logs(workspace, name)
    except Conflict as exc:  # served from another machine, which keeps its log
        log = str(exc)
    return render(
        request, "deployment.html", status, d=found, log=log[-LOG_TAIL:], cut=len(log) > LOG_TAIL,
        body=sent.get("body", EXAMPLE_BODY), answer=sent.get("answer"),
        errors=sent.get("errors", {}),
    )  # fmt: skip


@router.get("/deployments/{name}")
def deployment(request: Request, workspace: Served, viewer: Looker, name: str) -> Response:
    """One deployment: its state (the supervisor's health verdict), the end of its log, and
    (contributors and admins) a form that sends it a test request."""
    return _deployment_page(request, workspace, name)


@router.post("/deployments/{name}/test")
async def test_deployment(
    request: Request, workspace: Served, viewer: Looker, name: str
) -> Response:
    """Send the form's body to the deployment from the server; show its answer, or the
    one-line error beside the field."""
    from kiln.serving.testrequest import send_test_request

    form = await checked_form(request, viewer)
    body = form.get("body", "")
    try:
        answer = send_test_request(workspace, viewer.actor, name, body)
    except Forbidden:
        raise
    except KilnError as exc:
        errors = {"body": one_line(str(exc))}
        return _deployment_page(request, workspace, name, exc.status, body=body, errors=errors)
    return _deployment_page(request, workspace, name, body=body, answer=answer)


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
