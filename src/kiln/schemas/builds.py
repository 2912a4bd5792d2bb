"""Builds, locks and the machine-local cache."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kiln.schemas.base import Public


class Package(Public):
    name: str
    version: str


class Lock(Public):
    """One lock generation of a build hash on a platform (the exact resolved package set)."""

    build_hash: str
    platform: str
    generation: int
    lock_digest: str
    format: str
    resolver: str
    packages: list[Package]
    created_at: str | None
    text: str | None = None  # ``env lock --json``: the lock in the export format asked for


class LockRecord(Public):
    """A stored lock generation whole, as a server hands it to a client that builds from it:
    the package records as the resolver gave them and the lock text, which hashes to
    ``lock_digest``."""

    build_hash: str
    platform: str
    generation: int
    lock_digest: str
    format: str
    resolver: str
    packages: list[dict[str, str]]
    text: str
    created_at: str


class NewLock(Public):
    """A client's resolution, offered as the next generation of a build hash's lock."""

    platform: str
    generation: int
    format: str
    resolver: str
    packages: list[dict[str, str]]
    text: str


class NewBuildAttempt(Public):
    """A build attempt made on a client, with its log (the end of it, when it is long)."""

    platform: str
    builder: str
    machine: str
    status: str
    error: str | None
    lock_digest: str | None
    tool_versions: dict[str, Any]
    started_at: str
    duration_ms: int
    log: str


class BuildLog(Public):
    """``env logs --json``: the latest build of a version and its full log."""

    reference: str
    build_hash: str
    status: str
    machine: str
    started_at: str
    duration_ms: int | None
    log: str


class Interpreter(Public):
    """``env which --json``: the built environment's interpreter and its folder."""

    reference: str
    python: str
    prefix: str


class Build(Public):
    """The build behind a version on this machine (``env show --build``); ``state`` is
    "ready", "broken: WHY" or "not built" (then only ``build_hash`` is set)."""

    build_hash: str
    state: str
    builder: str | None
    platform: str | None
    lock_generation: int | None
    lock_digest: str | None
    location: str | None
    interpreter: str | None
    python: str | None
    size_bytes: int | None
    packages: int | None
    build_seconds: float | None
    tools: dict[str, str] | None
    last_used: str | None


class BuildAttempt(Public):
    """One recorded build of a build hash, on any machine sharing the workspace (the server's
    builds list)."""

    build_hash: str
    platform: str
    builder: str
    machine: str
    status: str  # succeeded | failed
    error: str | None
    lock_digest: str | None
    log_digest: str | None
    tool_versions: dict[str, Any]
    started_at: str | None
    duration_ms: int
    created_by: str | None  # who built it; None before Kiln recorded it


class BuildResult(Public):
    """``env build``: the ready build of a version, and whether it was built just now."""

    name: str
    version: str
    build_hash: str
    builder: str
    platform: str
    lock_generation: int
    lock_digest: str
    packages: int
    path: str
    interpreter: str
    built: bool
    seconds: float
    lock_changes: dict[str, Any] | None = None
    image: dict[str, Any] | None = None  # an image build: reference, digest, action, remote


class CacheEntry(Public):
    """``cache list``: one materialization on this machine."""

    key: str
    environments: list[str]
    size_bytes: int
    last_used: str
    in_use: int
    builder: str | None
    python: str | None


class GcReport(Public):
    """``cache gc``: ``package_caches`` maps a cache to bytes freed (None: not estimated), or
    is None when a running build holds the package caches."""

    removed: list[str]
    freed_bytes: int
    builds_freed_bytes: int
    package_caches: dict[str, int | None] | None
    dry_run: bool


class HealthResult(Public):
    """``cache verify``: one materialization's health."""

    key: str
    healthy: bool
    problem: str | None


class BuildLease(Public):
    """Who builds a materialization right now (kiln.buildleases), with the server's clock."""

    holder: str
    host: str
    pid: int
    building: str
    taken_at: float
    expires_at: float
    now: float


class LeaseKey(Public):
    platform: str = Field(max_length=200)
    builder: str = Field(max_length=100)


class LeaseTake(LeaseKey):
    """Take a free lease (``previous`` null) or one whose holder ``previous`` died or expired."""

    holder: str = Field(max_length=64)
    host: str = Field(max_length=255)
    pid: int
    building: str = Field(max_length=600)
    seconds: float = Field(ge=1, le=3600)
    previous: str | None = Field(default=None, max_length=64)


class LeaseRenew(LeaseKey):
    holder: str = Field(max_length=64)
    seconds: float = Field(ge=1, le=3600)


class LeaseWon(Public):
    won: bool
