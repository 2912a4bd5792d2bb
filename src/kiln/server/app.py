"""The application: ``create_app(workspace)`` for tests and ``kiln server``; ``from_environment``
is the factory uvicorn's workers import."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from kiln import __version__
from kiln.server import errors, routes_accounts, routes_builds, routes_environments, routes_runs, ui
from kiln.server.limits import BodyLimit
from kiln.server.state import served_workspace
from kiln.workspace import Workspace

API = "/api/v1"


def create_app(workspace: Workspace) -> FastAPI:
    app = FastAPI(
        title="Kiln",
        version=__version__,
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
    )
    app.state.workspace = workspace
    errors.install(app)
    api = APIRouter(prefix=API)
    for module in (routes_environments, routes_builds, routes_runs, routes_accounts):
        api.include_router(module.router)
    app.include_router(api)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. No token needed, nothing read."""
        return {"status": "ok"}

    ui.install(app)  # the web UI at /: after the API and /healthz, which keep their answers
    app.add_middleware(BodyLimit)
    return app


def from_environment() -> FastAPI:
    return create_app(served_workspace())
