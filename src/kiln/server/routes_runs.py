"""Runs, models and deployments: read-only views, the same core calls as ``kiln run|model|deploy``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from kiln.runs import core as runs
from kiln.runs.views import metrics, summary
from kiln.schemas.runs import Run, RunSummary
from kiln.schemas.serving import Deployment, Model
from kiln.server.auth import Reader, Served
from kiln.server.paging import Page, page

router = APIRouter()


@router.get("/runs", response_model=list[RunSummary], tags=["runs"])
def list_runs(
    workspace: Served,
    actor: Reader,
    experiment: str | None = None,
    environment: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """Runs, newest first; ``environment`` is NAME or NAME:VERSION."""
    found = runs.list_runs(workspace, experiment=experiment, environment=environment, limit=limit)
    return [summary(record) for record in found]


@router.get("/runs/{run_id}", response_model=Run, tags=["runs"])
def get_run(workspace: Served, actor: Reader, run_id: str) -> dict[str, Any]:
    return runs.describe_run(workspace, run_id).details


@router.get("/runs/{run_id}/metrics", tags=["runs"])
def run_metrics(workspace: Served, actor: Reader, run_id: str) -> dict[str, Any]:
    """Azure's shape: a metric logged once is its value, logged several times a list."""
    from kiln.runs.ending import get

    return metrics(workspace, get(workspace, run_id))


@router.get("/models", response_model=list[Model], tags=["models"])
def list_models(
    workspace: Served, actor: Reader, response: Response, paging: Page, name: str | None = None
) -> list[dict[str, Any]]:
    from kiln.serving import models

    return page([r.summary() for r in models.list_models(workspace, name)], paging, response)


@router.get("/models/{name}/versions/{version}", response_model=Model, tags=["models"])
def get_model(workspace: Served, actor: Reader, name: str, version: int) -> dict[str, Any]:
    from kiln.serving import models

    return models.get(workspace, name, version).summary()


@router.get("/deployments", response_model=list[Deployment], tags=["deployments"])
def list_deployments(
    workspace: Served, actor: Reader, response: Response, paging: Page
) -> list[dict[str, Any]]:
    from kiln.serving import deployments

    found = [r.summary() for r in deployments.list_deployments(workspace)]
    return page(found, paging, response)


@router.get("/deployments/{name}", response_model=Deployment, tags=["deployments"])
def get_deployment(workspace: Served, actor: Reader, name: str) -> dict[str, Any]:
    from kiln.serving import deployments

    return deployments.get(workspace, name).summary()
