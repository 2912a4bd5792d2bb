"""The application: ``create_app(workspace)`` for tests and ``kiln server``; ``from_environment``
is the factory uvicorn's workers import."""

from __future__ import annotations

import os

from fastapi import APIRouter, FastAPI

from kiln import __version__
from kiln.blobstores.base import BlobStore
from kiln.server import (
    errors,
    routes_accounts,
    routes_artifacts,
    routes_builds,
    routes_deployments,
    routes_environments,
    routes_runs,
    routes_wheels,
    ui,
)
from kiln.server.auth import ForgetTokensAfterWrites, token_cache
from kiln.server.limits import BodyLimit
from kiln.server.state import ARTIFACTS_VARIABLE, served_artifacts, served_workspace
from kiln.workspace import Workspace

API = "/api/v1"


def create_app(workspace: Workspace, artifacts: BlobStore | None = None) -> FastAPI:
    """The application serving ``workspace``; artifacts go to ``artifacts`` (default: the
    workspace's own artifact folder)."""
    app = FastAPI(
        title="Kiln",
        version=__version__,
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
    )
    app.state.workspace = workspace
    app.state.artifacts = artifacts or served_artifacts(workspace, None)
    app.state.tokens = token_cache()
    errors.install(app)
    api = APIRouter(prefix=API)
    routers = (
        routes_environments,
        routes_builds,
        routes_runs,
        routes_deployments,
        routes_accounts,
        routes_artifacts,
        routes_wheels,
    )
    for module in routers:
        api.include_router(module.router)
    app.include_router(api)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. No token needed, nothing read."""
        return {"status": "ok"}

    ui.install(app)  # the web UI at /: after the API and /healthz, which keep their answers
    app.add_middleware(ForgetTokensAfterWrites, cache=app.state.tokens)
    app.add_middleware(BodyLimit, streamed=(("PUT", f"{API}{routes_artifacts.PREFIX}/"),))
    return app


def from_environment() -> FastAPI:
    workspace = served_workspace()
    return create_app(workspace, served_artifacts(workspace, os.environ.get(ARTIFACTS_VARIABLE)))
