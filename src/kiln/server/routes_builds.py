"""Locks and builds: what ``kiln env lock|logs`` read by version, and by build hash the store a
client's build reads and writes (kiln.remotebuilds), so a team resolves each build once."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse

from kiln import catalog
from kiln.buildinfo import build_attempts, logged_build, stored_locks
from kiln.buildleases import RegistryLeases
from kiln.buildstore import RegistryBuildStore
from kiln.errors import InvalidRequest, NotFound
from kiln.registry.lease_queries import Holder
from kiln.registry.lease_queries import LeaseKey as LeaseKeyRow
from kiln.schemas.builds import (
    BuildAttempt,
    BuildLease,
    LeaseKey,
    LeaseRenew,
    LeaseTake,
    LeaseWon,
    Lock,
    LockRecord,
    NewBuildAttempt,
    NewLock,
)
from kiln.schemas.workspace import SharedSettings
from kiln.server.auth import Reader, Served, Writer
from kiln.workspace import SHARED_SETTINGS

router = APIRouter(tags=["builds"])
_VERSION = "/environments/{name}/versions/{version}"
_HASH = "/builds/{build_hash}"


@router.get("/workspace", response_model=SharedSettings)
def settings(workspace: Served, actor: Reader) -> dict[str, str | None]:
    """The settings a client's builds share with the team (``Workspace.setting``)."""
    return {key: workspace.setting(key) for key in SHARED_SETTINGS}


@router.get(f"{_VERSION}/locks", response_model=list[Lock])
def locks(workspace: Served, actor: Reader, name: str, version: str) -> list[dict[str, Any]]:
    """Every stored lock of the version's build hash: each platform, each generation."""
    record = catalog.get(workspace, name, version)
    return stored_locks(workspace, build_hash=record.build_hash)


@router.get(f"{_VERSION}/builds", response_model=list[BuildAttempt])
def builds(workspace: Served, actor: Reader, name: str, version: str) -> list[dict[str, Any]]:
    """Every recorded build of the version's build hash, on any machine, newest first."""
    record = catalog.get(workspace, name, version)
    return build_attempts(workspace, build_hash=record.build_hash)


@router.get(f"{_VERSION}/builds/latest/log", response_class=PlainTextResponse)
def build_log(workspace: Served, actor: Reader, name: str, version: str) -> str:
    """The full log of the latest build, as ``kiln env logs`` prints it after its header."""
    attempt = logged_build(workspace, catalog.get(workspace, name, version))
    assert attempt.log is not None
    return attempt.log.read_text(encoding="utf-8")


@router.get(f"{_HASH}/locks", response_model=list[LockRecord])
def hash_locks(
    workspace: Served,
    actor: Reader,
    build_hash: str,
    platform: str | None = None,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """Stored generations whole (text included), oldest first per platform; with
    ``platform`` and no ``generation``, only the newest."""
    store = RegistryBuildStore(workspace)
    if platform is not None:
        row = store.get_lock(build_hash=build_hash, platform=platform, generation=generation)
        rows = [] if row is None else [row]
    else:
        rows = store.list_locks(build_hash=build_hash)
    return [
        {
            "build_hash": r.build_hash,
            "platform": r.platform,
            "generation": r.generation,
            "lock_digest": r.lock_digest,
            "format": r.lock_format,
            "resolver": r.resolver,
            "packages": r.packages,
            "text": r.lock_text,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]


@router.post(f"{_HASH}/locks")
def store_lock(
    workspace: Served, actor: Writer, response: Response, build_hash: str, lock: NewLock
) -> dict[str, bool]:
    """Store the next generation: 201, or 200 with ``stored: false`` when another client
    stored that generation first (then its lock is the one to install)."""
    stored = RegistryBuildStore(workspace, actor).insert_lock(
        build_hash=build_hash,
        platform=lock.platform,
        generation=lock.generation,
        lock_format=lock.format,
        lock_text=lock.text,
        packages=lock.packages,
        resolver=lock.resolver,
    )
    response.status_code = 201 if stored else 200
    return {"stored": stored}


@router.get(f"{_HASH}/attempts", response_model=list[BuildAttempt])
def hash_attempts(
    workspace: Served,
    actor: Reader,
    build_hash: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return build_attempts(workspace, build_hash=build_hash)[:limit]


@router.post(f"{_HASH}/attempts", status_code=201)
def record_attempt(
    workspace: Served, actor: Writer, build_hash: str, attempt: NewBuildAttempt
) -> dict[str, str]:
    """Record a client's build attempt and keep its log; answers the log's digest."""
    import json
    import tempfile
    from pathlib import Path

    if attempt.status not in ("succeeded", "failed"):
        raise InvalidRequest("`status`: must be succeeded or failed")
    if attempt.lock_digest is not None:
        _known_lock(workspace, build_hash, attempt.lock_digest)
    values = attempt.model_dump(exclude={"log", "tool_versions", "started_at"})
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "build.log"
        log.write_text(attempt.log, encoding="utf-8")
        digest = RegistryBuildStore(workspace, actor).record_build(
            log=log,
            build_hash=build_hash,
            tool_versions=json.dumps(attempt.tool_versions),
            started_at=_moment(attempt.started_at),
            created_by=actor.name,
            **values,
        )
    return {"log_digest": digest}


def _moment(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest("`started_at`: not an ISO-8601 time") from None


def _known_lock(workspace: Any, build_hash: str, digest: str) -> None:
    rows = RegistryBuildStore(workspace).list_locks(build_hash=build_hash)
    if not any(r.lock_digest == digest for r in rows):
        raise InvalidRequest(f"`lock_digest`: build {build_hash[:12]} has no lock {digest[:12]}")


@router.get(f"{_HASH}/logs/{{digest}}", response_class=PlainTextResponse)
def hash_log(workspace: Served, actor: Reader, build_hash: str, digest: str) -> Response:
    """A build log of ``build_hash`` by its digest."""
    store = RegistryBuildStore(workspace)
    attempts = store.list_builds(build_hash=build_hash, limit=1000)
    path = (
        store.build_log(build_hash=build_hash, digest=digest)
        if any(a["log_digest"] == digest for a in attempts)
        else None
    )
    if path is None:
        raise NotFound(f"build {build_hash[:12]} has no log {digest[:12]}")
    return Response(path.read_bytes(), media_type="text/plain; charset=utf-8")  # hashed as is


# Build leases (kiln.buildleases): clients of one server build each materialization once. The
# server's clock decides expiry for all of them; whether a holder's process is alive is for its
# own host to judge, so that check stays with the client.


def _lease_key(build_hash: str, key: LeaseKey) -> LeaseKeyRow:
    return LeaseKeyRow(build_hash, key.platform, key.builder)


@router.get(f"{_HASH}/lease", response_model=BuildLease | None)
def lease(
    workspace: Served, actor: Reader, build_hash: str, platform: str, builder: str
) -> dict[str, Any] | None:
    """Who builds this materialization now, or null."""
    key = LeaseKey(platform=platform, builder=builder)
    row = RegistryLeases(workspace).current(_lease_key(build_hash, key))
    return None if row is None else {field: row[field] for field in BuildLease.model_fields}


@router.post(f"{_HASH}/lease", response_model=LeaseWon)
def take_lease(
    workspace: Served, actor: Writer, build_hash: str, body: LeaseTake
) -> dict[str, bool]:
    """Take the free lease, or (``previous`` given) the one of a holder that died."""
    book, key = RegistryLeases(workspace), _lease_key(build_hash, body)
    holder = Holder(body.holder, body.host, body.pid, body.building)
    if body.previous is None:
        return {"won": book.insert(key, holder, body.seconds)}
    return {"won": book.take_over(key, holder, body.previous, body.seconds)}


@router.post(f"{_HASH}/lease/renew", response_model=LeaseWon)
def renew_lease(
    workspace: Served, actor: Writer, build_hash: str, body: LeaseRenew
) -> dict[str, bool]:
    return {
        "won": RegistryLeases(workspace).renew(
            _lease_key(build_hash, body), body.holder, body.seconds
        )
    }


@router.delete(f"{_HASH}/lease", status_code=204)
def release_lease(
    workspace: Served, actor: Writer, build_hash: str, platform: str, builder: str, holder: str
) -> Response:
    key = LeaseKey(platform=platform, builder=builder)
    RegistryLeases(workspace).release(_lease_key(build_hash, key), holder)
    return Response(status_code=204)
