"""Runs and models: the same core calls as ``kiln run|model`` (deployments: routes_deployments).

Besides the views (``/runs``), the records a client's run writes as it goes (``/run-records``,
``/targets``): a run is carried out on the client, which reads and writes its record here
(registry/server_runs.py); kiln.runs.served decides who may.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from kiln.errors import InvalidRequest
from kiln.registry.server_runs import row_of
from kiln.runs import core as runs
from kiln.runs import served
from kiln.runs.views import metrics, summary
from kiln.schemas.runs import Run, RunSummary
from kiln.schemas.serving import Model
from kiln.server.auth import Reader, Served, Writer
from kiln.server.paging import Page, page
from kiln.server.routes_artifacts import Store

router = APIRouter()
_LOG_READ = 4 * 1024 * 1024


@router.get("/runs", response_model=list[RunSummary], tags=["runs"])
def list_runs(
    workspace: Served,
    actor: Reader,
    experiment: str | None = None,
    environment: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Runs, newest first; ``environment`` is NAME or NAME:VERSION; ``offset`` skips that
    many of the matching runs."""
    found = runs.list_runs(
        workspace, experiment=experiment, environment=environment, status=status,
        limit=limit, offset=offset,
    )  # fmt: skip
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


class ModelRegistration(BaseModel):
    """A model whose content a client put in the artifact store (kiln.serving.remotemodels)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    kind: str = Field(max_length=16)
    digest: str = Field(max_length=64)
    file_name: str = Field(min_length=1, max_length=512)
    size: int = Field(ge=0)  # the server counts it itself
    manifest: str | None = Field(default=None, max_length=64)
    tags: dict[str, str] | None = None
    description: str | None = Field(default=None, max_length=10_000)
    run_id: str | None = Field(default=None, max_length=128)
    environment: tuple[str, str] | None = None


@router.post("/model-records", status_code=201, tags=["model records"])
def register_model(
    workspace: Served, actor: Writer, store: Store, body: ModelRegistration
) -> dict[str, Any]:
    from kiln.serving import servedmodels
    from kiln.serving.remotemodels import document_of

    return document_of(servedmodels.register(workspace, store, actor, body.model_dump()))


@router.get("/model-records", tags=["model records"])
def list_model_records(
    workspace: Served, actor: Reader, name: str | None = None
) -> list[dict[str, Any]]:
    """Every version (of ``name``), by name then version, as the client's ``ModelRecord``."""
    from kiln.serving import models
    from kiln.serving.remotemodels import document_of

    return [document_of(r) for r in models.list_models(workspace, name)]


@router.get("/model-records/{name}/{version}", tags=["model records"])
def get_model_record(workspace: Served, actor: Reader, name: str, version: str) -> dict[str, Any]:
    """A version (a number, or ``latest``)."""
    from kiln.serving import models
    from kiln.serving.remotemodels import document_of

    number = models.parse_model_reference(f"{name}:{version}")[1]
    return document_of(models.get(workspace, name, number))


class RunDocument(BaseModel):
    """A run record as a client sends and receives it (``RunRecord``'s fields)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=128)
    experiment: str
    status: str = Field(max_length=32)
    script: str
    arguments: list[str]
    snapshot_digest: str = Field(max_length=64)
    env_name: str = Field(max_length=255)
    env_version: str = Field(max_length=64)
    build_hash: str = Field(max_length=64)
    compute_target: str = Field(max_length=512)
    created_at: float
    lock_digest: str | None = Field(default=None, max_length=64)
    platform: str | None = Field(default=None, max_length=64)
    target_job_id: str | None = Field(default=None, max_length=255)
    watcher: str | None = Field(default=None, max_length=255)
    process_group: int | None = None
    cancel_requested: bool = False
    exit_code: int | None = None
    error: str | None = None
    log_digest: str | None = Field(default=None, max_length=64)
    outputs_digest: str | None = Field(default=None, max_length=64)
    outputs: list[dict[str, Any]] = []
    reproduces: str | None = Field(default=None, max_length=128)
    started_at: float | None = None
    ended_at: float | None = None
    image_reference: str | None = Field(default=None, max_length=512)
    image_digest: str | None = Field(default=None, max_length=80)
    # Accepted and never trusted: who submitted a run is the token's user (kiln.runs.served).
    created_by: str | None = Field(default=None, max_length=255)
    # Checked against the artifact store before they are stored (kiln.runs.served).
    snapshot_manifest: str | None = Field(default=None, max_length=64)
    outputs_manifest: str | None = Field(default=None, max_length=64)


_SERVER_SET = {"id", "created_by"}  # what a client never changes


def _optional(annotation: Any) -> Any:
    return annotation | None


# Any of a record's fields a client may change, each checked as RunDocument checks it.
_Changes: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "RunChanges",
    __config__=ConfigDict(extra="forbid"),
    **{
        name: (_optional(field.annotation), FieldInfo.merge_field_infos(field, default=None))
        for name, field in RunDocument.model_fields.items()
        if name not in _SERVER_SET
    },
)


def _changes(values: dict[str, Any]) -> dict[str, Any]:
    try:
        checked = _Changes.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"`values.{where}`: {first['msg']}; fix the request") from None
    return row_of(checked.model_dump(exclude_unset=True))


class RunChange(BaseModel):
    values: dict[str, Any]
    unless_status: list[str] = []


class RunTakeOver(BaseModel):
    old_watcher: str | None
    new_watcher: str = Field(max_length=255)
    unless_status: list[str] = []


class RunMetrics(BaseModel):
    metrics: list[tuple[str, str, float]]


class RunEnd(RunChange):
    metrics: list[tuple[str, str, float]] = []


class LogChunk(BaseModel):
    offset: int = Field(ge=0)
    data: str  # base64
    last: bool


class TargetAddress(BaseModel):
    address: str = Field(min_length=1, max_length=512)


class Changed(BaseModel):
    changed: bool


@router.get("/run-records", tags=["run records"])
def list_run_records(
    workspace: Served,
    actor: Reader,
    experiment: str | None = None,
    env_name: str | None = None,
    env_version: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Stored run records, newest first (not settled: a client settles what it watches)."""
    filters = {"experiment": experiment, "env_name": env_name, "env_version": env_version}
    return served.run_documents(workspace, **filters, status=status, limit=limit, offset=offset)


@router.post("/run-records", status_code=201, tags=["run records"])
def record_run(workspace: Served, actor: Writer, store: Store, body: RunDocument) -> dict[str, Any]:
    row = row_of(body.model_dump(exclude={"created_by"}))
    served.record_run(workspace, actor, row, store)
    return served.run_document(workspace, body.id)


@router.get("/run-records/{run_id}", tags=["run records"])
def get_run_record(workspace: Served, actor: Reader, run_id: str) -> dict[str, Any]:
    return served.run_document(workspace, run_id)


@router.patch("/run-records/{run_id}", response_model=Changed, tags=["run records"])
def change_run(
    workspace: Served, actor: Writer, store: Store, run_id: str, body: RunChange
) -> Changed:
    values = _changes(body.values)
    changed = served.change_run(workspace, actor, run_id, values, body.unless_status, store)
    return Changed(changed=changed)


@router.post("/run-records/{run_id}/take-over", response_model=Changed, tags=["run records"])
def take_over_run(workspace: Served, actor: Writer, run_id: str, body: RunTakeOver) -> Changed:
    changed = served.take_over(
        workspace,
        actor,
        run_id,
        old_watcher=body.old_watcher,
        new_watcher=body.new_watcher,
        unless_status=body.unless_status,
    )
    return Changed(changed=changed)


@router.post("/run-records/{run_id}/finish", response_model=Changed, tags=["run records"])
def finish_run(
    workspace: Served, actor: Writer, store: Store, run_id: str, body: RunEnd
) -> Changed:
    values = _changes(body.values)
    ended = served.end_run(
        workspace, actor, run_id, values, body.unless_status, body.metrics, store
    )
    return Changed(changed=ended)


@router.get("/run-records/{run_id}/metrics", tags=["run records"])
def list_run_metrics(workspace: Served, actor: Reader, run_id: str) -> list[tuple[str, str]]:
    """(name, value as JSON text), in the order they were logged."""
    return served.metric_rows(workspace, run_id)


@router.post("/run-records/{run_id}/metrics", tags=["run records"])
def add_run_metrics(
    workspace: Served, actor: Writer, run_id: str, body: RunMetrics
) -> dict[str, int]:
    served.add_metrics(workspace, actor, run_id, body.metrics)
    return {"added": len(body.metrics)}


@router.post("/run-records/{run_id}/log", tags=["run records"])
def put_run_log(workspace: Served, actor: Writer, run_id: str, body: LogChunk) -> dict[str, int]:
    """One chunk of the run's log; the one marked ``last`` makes the whole log the run's."""
    try:
        data = base64.b64decode(body.data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("`data`: not base64; send the log's bytes base64-encoded") from None
    served.put_log(workspace, actor, run_id, offset=body.offset, data=data, last=body.last)
    return {"received": body.offset + len(data)}


@router.get("/run-records/{run_id}/log", tags=["run records"])
def read_run_log(
    workspace: Served,
    actor: Reader,
    run_id: str,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=_LOG_READ)] = _LOG_READ,
) -> dict[str, str]:
    data = served.read_log(workspace, run_id, offset=offset, limit=limit)
    return {"data": base64.b64encode(data).decode("ascii")}


@router.get("/targets", tags=["targets"])
def list_targets(workspace: Served, actor: Reader) -> list[dict[str, Any]]:
    """Named compute targets as stored (name, kind, address, created_at in epoch seconds)."""
    return served.target_rows(workspace)


@router.put("/targets/{name}", tags=["targets"])
def put_target(workspace: Served, actor: Writer, name: str, body: TargetAddress) -> dict[str, Any]:
    return served.put_target(workspace, actor, name, body.address)


@router.delete("/targets/{name}", tags=["targets"])
def remove_target(workspace: Served, actor: Writer, name: str) -> dict[str, str]:
    served.remove_target(workspace, actor, name)
    return {"removed": name}
