"""The web UI: server-rendered pages (Jinja2, htmx for partial updates) on the same app as the
API, reading the same core functions. ``install(app)`` adds it; ``kiln ui`` serves a local
workspace through ``local.serve``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the UI's routes (after the API's, so ``/api`` keeps its JSON answers)."""
    from kiln.server.ui import (
        routes_builds,
        routes_environments,
        routes_other,
        routes_runs,
        routes_session,
        routes_static,
    )

    for module in (
        routes_static,
        routes_session,
        routes_environments,
        routes_builds,
        routes_runs,
        routes_other,
    ):
        app.include_router(module.router, include_in_schema=False)
