"""The public schemas: one per concept, and one per command result that composes them.

``PUBLISHED`` names each document; ``python -m kiln.schemas`` writes their JSON Schemas to
``schema/public/`` (committed, shipped in the package, checked fresh by a test). A list output
is published as ``NAME-list``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from kiln.schemas import (
    accounts,
    artifacts,
    builds,
    doctor,
    environments,
    images,
    runs,
    serving,
    workspace,
)
from kiln.schemas.base import Public

PUBLISHED: dict[str, type[BaseModel]] = {
    "environment-version": environments.EnvironmentVersion,
    "registered-version": environments.RegisteredVersion,
    "environment-detail": environments.EnvironmentDetail,
    "digests": environments.Digests,
    "definition-diff": environments.DefinitionDiff,
    "lint-report": environments.LintReport,
    "written-files": environments.WrittenFiles,
    "archive-result": environments.ArchiveResult,
    "lock": builds.Lock,
    "build": builds.Build,
    "build-log": builds.BuildLog,
    "interpreter": builds.Interpreter,
    "build-attempt": builds.BuildAttempt,
    "build-result": builds.BuildResult,
    "cache-entry": builds.CacheEntry,
    "gc-report": builds.GcReport,
    "health-result": builds.HealthResult,
    "run": runs.Run,
    "run-summary": runs.RunSummary,
    "run-state": runs.RunState,
    "run-log": runs.RunLog,
    "run-submitted": runs.RunSubmitted,
    "saved-files": runs.SavedFiles,
    "compute-target": runs.ComputeTarget,
    "model": serving.Model,
    "deployment": serving.Deployment,
    "deployment-deleted": serving.DeploymentDeleted,
    "deployment-test": serving.DeploymentTest,
    "workspace": workspace.WorkspaceInfo,
    "wheel": workspace.Wheel,
    "wheel-added": workspace.WheelAdded,
    "image": images.Image,
    "image-detail": images.ImageDetail,
    "outdated-image": images.OutdatedImage,
    "doctor-check": doctor.DoctorCheck,
    "account": accounts.Account,
    "token": accounts.Token,
    "token-created": accounts.TokenCreated,
    "audit-entry": accounts.AuditEntry,
    "artifact-stored": artifacts.ArtifactStored,
    "artifact-transfer": artifacts.ArtifactTransfer,
}
LISTS = {"environment-version", "run-summary", "compute-target", "model", "deployment",
         "cache-entry", "health-result", "wheel", "image", "outdated-image", "doctor-check",
         "build-attempt", "lock", "token", "audit-entry"}  # fmt: skip
SCHEMA_BASE = "https://kiln.dev/schema/public/"

__all__ = ["LISTS", "PUBLISHED", "Public", "json_schemas", "write_schemas"]


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every published JSON Schema by document name (``NAME`` and ``NAME-list``)."""
    documents: dict[str, dict[str, Any]] = {}
    for name, model in PUBLISHED.items():
        documents[name] = model.model_json_schema()
        if name in LISTS:
            documents[f"{name}-list"] = TypeAdapter(list[model]).json_schema()  # type: ignore[valid-type]
    for name, document in documents.items():
        document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        document["$id"] = f"{SCHEMA_BASE}{name}.schema.json"
    return documents


def write_schemas(folder: Path) -> list[Path]:
    """Write every schema to ``folder/NAME.schema.json``; stale files there are removed."""
    from kiln.atomicfile import write_atomically

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    documents = json_schemas()
    for stale in folder.glob("*.schema.json"):
        if stale.name.removesuffix(".schema.json") not in documents:
            stale.unlink()
    for name, document in sorted(documents.items()):
        path = folder / f"{name}.schema.json"
        write_atomically(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
