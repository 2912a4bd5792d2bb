"""The UI's static files, shipped in the package: no build step, nothing fetched at run time."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from kiln.errors import NotFound
from kiln.server.ui.pages import PageRoute

router = APIRouter(route_class=PageRoute)
_STATIC = Path(__file__).parent / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css"}
# An hour in the browser's cache: pages load fast, and a new Kiln is seen the same day.
_CACHE = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}


@router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    path = _STATIC / name
    if "/" in name or path.suffix not in _TYPES or not path.is_file():
        raise NotFound(f"no static file {name!r}")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_CACHE)
