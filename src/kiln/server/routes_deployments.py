"""Deployments: the views (``/deployments``, as ``kiln deploy list|show`` print them, with a
test request sent from the server) and the records a client's deployment writes as it goes
(``/deployment-records``): a deployment is served by a supervisor on the client, which reads
and writes its record here (kiln.serving.remotedeployments); kiln.serving.serveddeployments
decides who may.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from kiln.schemas.serving import Deployment, DeploymentTest
from kiln.server.auth import Reader, Served, Writer
from kiln.server.paging import Page, page
from kiln.serving import serveddeployments as served

router = APIRouter()


@router.get("/deployments", response_model=list[Deployment], tags=["deployments"])
def list_deployments(
    workspace: Served, actor: Reader, response: Response, paging: Page
) -> list[dict[str, Any]]:
    from kiln.serving import deployments

    found = [r.summary() for r in deployments.list_deployments(workspace)]
    return page(found, paging, response)


class ScoringRequest(BaseModel):
    body: str = Field(max_length=1024 * 1024)  # JSON text, sent as it is


@router.post("/deployments/{name}/test", response_model=DeploymentTest, tags=["deployments"])
def test_deployment(
    workspace: Served, actor: Writer, name: str, request: ScoringRequest
) -> dict[str, Any]:
    """Send ``body`` to the deployment's scoring URI from the server; its answer, any status."""
    from kiln.serving.testrequest import send_test_request

    return send_test_request(workspace, actor, name, request.body).summary()


@router.get("/deployments/{name}", response_model=Deployment, tags=["deployments"])
def get_deployment(workspace: Served, actor: Reader, name: str) -> dict[str, Any]:
    from kiln.serving import deployments

    return deployments.get(workspace, name).summary()


class SpecDocument(BaseModel):
    """What a deployment serves (``DeploymentSpec``'s fields)."""

    model_config = ConfigDict(extra="forbid")
    models: list[str] = Field(min_length=1, max_length=100)
    entry_script: str = Field(min_length=1, max_length=4096)
    source_snapshot: str = Field(max_length=64)
    env_name: str = Field(max_length=255)
    env_version: str = Field(max_length=64)
    workers: int = Field(ge=1)
    environment_variables: dict[str, str] = {}
    max_body_bytes: int = Field(ge=1)
    show_errors: bool = False
    health_port: int | None = Field(default=None, ge=1, le=65535)


class NewRecord(BaseModel):
    """A deployment's first generation (``NewDeployment``'s fields)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    state: str = Field(max_length=32)
    spec: SpecDocument
    host: str = Field(min_length=1, max_length=255)
    port: int | None = Field(default=None, ge=0, le=65535)
    supervisor: str | None = Field(default=None, max_length=255)
    kind: str = Field(max_length=16)


class Creation(BaseModel):
    record: NewRecord
    replaces: str | None = Field(default=None, max_length=255)


class Changes(BaseModel):
    """What a supervisor reports; only the fields sent change (``null`` clears one)."""

    model_config = ConfigDict(extra="forbid")
    state: str | None = Field(default=None, max_length=32)
    port: int | None = Field(default=None, ge=0, le=65535)
    supervisor: str | None = Field(default=None, max_length=255)
    error: str | None = Field(default=None, max_length=100_000)
    applied_generation: int | None = Field(default=None, ge=0)
    image: str | None = Field(default=None, max_length=512)
    image_digest: str | None = Field(default=None, max_length=80)
    containers: list[str] | None = Field(default=None, max_length=10_000)


class Change(BaseModel):
    values: Changes


class GenerationRequest(BaseModel):
    spec: SpecDocument
    state: str = Field(max_length=32)


@router.get("/deployment-records", tags=["deployment records"])
def list_deployment_records(workspace: Served, actor: Reader) -> list[dict[str, Any]]:
    """Stored records by name, as the client's book reads them (no state inferred)."""
    return served.documents(workspace)


@router.post("/deployment-records", status_code=201, tags=["deployment records"])
def record_deployment(workspace: Served, actor: Writer, body: Creation) -> dict[str, Any]:
    return served.create(workspace, actor, body.record.model_dump(), body.replaces)


@router.get("/deployment-records/{name}", tags=["deployment records"])
def get_deployment_record(workspace: Served, actor: Reader, name: str) -> dict[str, Any]:
    return served.document(workspace, name)


@router.patch("/deployment-records/{name}", tags=["deployment records"])
def change_deployment(workspace: Served, actor: Writer, name: str, body: Change) -> dict[str, Any]:
    values = body.values.model_dump(exclude_unset=True)
    return served.set_fields(workspace, actor, name, values)


@router.post("/deployment-records/{name}/generations", tags=["deployment records"])
def request_generation(
    workspace: Served, actor: Writer, name: str, body: GenerationRequest
) -> dict[str, int | None]:
    """The next generation's spec; its number (null: no such deployment)."""
    number = served.request_generation(workspace, actor, name, body.spec.model_dump(), body.state)
    return {"generation": number}


@router.delete("/deployment-records/{name}", tags=["deployment records"])
def delete_deployment(workspace: Served, actor: Writer, name: str) -> dict[str, bool]:
    return {"deleted": served.delete(workspace, actor, name)}


@router.get("/deployment-records/{name}/may-change", tags=["deployment records"])
def may_change(workspace: Served, actor: Writer, name: str) -> dict[str, bool]:
    """Answers only for the deployment's creator or an admin (else 403, or 404)."""
    served.check_may_change(workspace, actor, name)
    return {"may_change": True}
