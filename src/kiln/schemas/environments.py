"""Environment versions and what the ``kiln env`` commands report about them."""

from __future__ import annotations

from typing import Any, Literal

from kiln.schemas.base import Public
from kiln.schemas.builds import Build


class EnvironmentVersion(Public):
    """One registered version (``env list``, ``env tag``)."""

    name: str
    version: str
    description: str | None
    tags: dict[str, str]
    build_hash: str
    definition_digest: str
    created_at: str | None  # ISO-8601 UTC; None for curated environments
    # Who registered it: a server's user, or "local:USER" on a workspace opened directly;
    # None for curated environments and versions registered before Kiln recorded it.
    created_by: str | None
    archived: bool
    curated: bool


class ListedVersion(EnvironmentVersion):
    """The server's environment list; ``definitions=true`` adds each one's definition (secrets
    masked), so a client lists whole records in one request per page."""

    definition: dict[str, Any] | None = None


class RegisteredVersion(EnvironmentVersion):
    """``env register``: the version, whether it is new, and which versions share its build."""

    created: bool
    same_build_as: list[str]


class RunOfEnvironment(Public):
    """A run that used an environment version (lineage, ``env show --runs``)."""

    id: str
    experiment: str
    status: str
    lock_digest: str | None
    created_at: str


class EnvironmentDetail(EnvironmentVersion):
    """``env show``: the version with its definition (secrets masked), optional build and runs."""

    same_build_as: list[str]
    definition: dict[str, Any]
    build: Build | None = None
    runs: list[RunOfEnvironment] | None = None


class Digests(Public):
    """``env hash``."""

    name: str | None
    source: str
    build_hash: str
    definition_digest: str


class ListChange(Public):
    added: list[str]
    removed: list[str]
    changed: list[dict[str, str]]  # {"from": ..., "to": ...}
    reordered: bool


class DefinitionDiff(Public):
    """``env diff``: ``changes`` maps a field to a ListChange or to {"from", "to"}."""

    old: str
    new: str
    same_build: bool
    same_definition: bool
    order_only: bool
    changes: dict[str, Any]


class Finding(Public):
    level: Literal["error", "warning", "info"]
    field: str
    message: str


class LintReport(Public):
    """``env lint``."""

    source: str
    findings: list[Finding]


class WrittenFiles(Public):
    """``env scaffold`` and ``env download``."""

    name: str | None
    version: str | None = None
    format: str
    files: list[str]


class ArchiveResult(Public):
    """``env archive`` and ``env restore``."""

    name: str
    version: str | None
    archived: bool
    versions_changed: int
