"""Runs, their metrics and the compute targets they run on."""

from __future__ import annotations

from typing import Any

from pydantic import RootModel

from kiln.schemas.base import Public


class RunEnvironment(Public):
    name: str
    version: str
    build_hash: str | None
    lock_digest: str | None
    platform: str | None
    newer_versions: list[str] | None = None  # ``run show`` only


class RunImage(Public):
    """The image a container run ran in: ``reproduce`` runs this digest again."""

    reference: str | None
    digest: str


class OutputFile(Public):
    name: str
    size: int


class Run(Public):
    """``run show`` and ``run submit --json``. ``metrics`` is Azure's shape: a metric logged
    once is its value, logged several times a list of values."""

    id: str
    experiment: str
    status: str
    target: str
    script: str
    arguments: list[str]
    environment: RunEnvironment
    snapshot_digest: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    duration_seconds: float | None
    exit_code: int | None
    error: str | None
    cancel_requested: bool
    metrics: dict[str, Any]
    outputs: list[OutputFile]
    files: list[str]
    reproduces: str | None
    target_job_id: str | None
    image: RunImage | None = None  # container runs only


class RunSummary(Public):
    """``run list``: one row."""

    id: str
    experiment: str
    status: str
    environment: str
    target: str
    created_at: str | None
    exit_code: int | None


class RunLog(Public):
    """``run logs --json``: the run's log as it is now (its whole text)."""

    id: str
    status: str
    log: str


class RunState(Public):
    """``run submit --detach`` and ``run cancel``."""

    id: str
    status: str


class ComputeTarget(Public):
    """``target list``: a named compute target."""

    name: str
    kind: str
    address: str
    created_at: str | None
    created_by: str | None = None  # who named it (None: before Kiln recorded it)


class RunSubmitted(RootModel[Run | RunState]):
    """``run submit`` and ``run reproduce``: the finished run, or with ``--detach`` its state."""


class SavedFiles(RootModel[list[str]]):
    """``run download``: the paths written."""
