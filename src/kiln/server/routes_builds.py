"""Locks and builds of an environment version: what ``kiln env lock|logs`` read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from kiln import catalog
from kiln.buildinfo import build_attempts, logged_build, stored_locks
from kiln.schemas.builds import BuildAttempt, Lock
from kiln.server.auth import Reader, Served

router = APIRouter(prefix="/environments/{name}/versions/{version}", tags=["builds"])


@router.get("/locks", response_model=list[Lock])
def locks(workspace: Served, actor: Reader, name: str, version: str) -> list[dict[str, Any]]:
    """Every stored lock of the version's build hash: each platform, each generation."""
    record = catalog.get(workspace, name, version)
    return stored_locks(workspace, build_hash=record.build_hash)


@router.get("/builds", response_model=list[BuildAttempt])
def builds(workspace: Served, actor: Reader, name: str, version: str) -> list[dict[str, Any]]:
    """Every recorded build of the version's build hash, on any machine, newest first."""
    record = catalog.get(workspace, name, version)
    return build_attempts(workspace, build_hash=record.build_hash)


@router.get("/builds/latest/log", response_class=PlainTextResponse)
def build_log(workspace: Served, actor: Reader, name: str, version: str) -> str:
    """The full log of the latest build, as ``kiln env logs`` prints it after its header."""
    attempt = logged_build(workspace, catalog.get(workspace, name, version))
    assert attempt.log is not None
    return attempt.log.read_text(encoding="utf-8")
