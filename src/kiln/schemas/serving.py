"""Registered models and deployments."""

from __future__ import annotations

from kiln.schemas.base import Public


class Model(Public):
    """``model register|list|show``."""

    name: str
    version: int
    id: str  # NAME:VERSION, as Azure's Model.id
    kind: str  # file | folder
    file_name: str
    size: int
    digest: str
    description: str | None
    tags: dict[str, str]
    run_id: str | None
    environment: str | None  # NAME:VERSION of the environment that trained it
    created_at: str | None
    created_by: str | None  # who registered it; None before Kiln recorded it


class Deployment(Public):
    """``deploy create|list|show|update``."""

    name: str
    state: str
    scoring_uri: str | None
    liveness_uri: str | None = None  # with a health port: GET answers while the service lives
    host: str
    port: int | None
    models: list[str]
    environment: str
    entry_script: str
    workers: int
    generation: int
    serving_generation: int
    error: str | None
    kind: str  # process | container
    image: str | None  # a container deployment's image, of the serving generation
    image_digest: str | None
    containers: list[str]  # its containers
    created_at: str | None
    updated_at: str | None
    created_by: str | None  # who created it; None before Kiln recorded it


class DeploymentDeleted(Public):
    """``deploy delete``."""

    name: str
    deleted: bool


class DeploymentTest(Public):
    """A test request's answer (the UI's form, ``POST /deployments/NAME/test``)."""

    status: int  # the service's status code, whatever it is
    content_type: str
    body: str  # the start of the body, as text
    cut: bool  # the body was longer than what is kept
