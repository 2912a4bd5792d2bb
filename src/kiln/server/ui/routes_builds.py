"""Rebuild a version from its page, and follow that build's log live (server-sent events)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from kiln import catalog
from kiln.accounts import require_writer
from kiln.server.auth import Served
from kiln.server.ui import livebuilds
from kiln.server.ui.pages import Looker, PageRoute, checked_form
from kiln.server.ui.versionview import address

router = APIRouter(route_class=PageRoute)


@router.post("/environments/{name}/versions/{version}/build")
async def rebuild(
    request: Request, workspace: Served, viewer: Looker, name: str, version: str
) -> Response:
    await checked_form(request, viewer)
    require_writer(viewer.actor)
    record = catalog.get(workspace, name, version)
    livebuilds.start(workspace, record, viewer.actor, request.app.state.artifacts)
    return RedirectResponse(address(name, version) + "#live-build", 303)


@router.get("/environments/{name}/versions/{version}/build/events")
def build_events(workspace: Served, viewer: Looker, name: str, version: str) -> Response:
    record = catalog.get(workspace, name, version)
    return StreamingResponse(
        livebuilds.follow(workspace, record.build_hash),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
