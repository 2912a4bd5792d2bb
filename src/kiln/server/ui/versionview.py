"""What the page of one environment version shows, gathered from the core: the summary, the
definition as YAML (masked, as ``kiln env show``), the stored locks, the builds and the latest
log, the diff against another version, the image and its Dockerfile, and the runs that used it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kiln import catalog
from kiln.errors import KilnError, UsageError
from kiln.server.ui import livebuilds
from kiln.server.ui.pages import tail_text

if TYPE_CHECKING:
    from kiln.catalog import EnvironmentRecord
    from kiln.workspace import Workspace

RUNS_SHOWN = 50
VERSIONS_OFFERED = 100  # the diff's choice lists the newest; the text field takes any


def address(name: str, version: str) -> str:
    return f"/environments/{quote(name, safe='')}/versions/{quote(version, safe='')}"


def parse_tag(pair: str) -> tuple[str, str]:
    """``KEY=VALUE``, with ``kiln env tag``'s own message when it is not."""
    key, sep, value = pair.strip().partition("=")
    if not sep or not key:
        raise UsageError(f"tag {pair!r} must be KEY=VALUE; use --remove KEY to drop one")
    return key, value


def latest_per_platform(workspace: Workspace, build_hash: str) -> list[dict[str, Any]]:
    """The newest build attempt of each platform (attempts come newest first)."""
    from kiln.buildinfo import build_attempts

    newest: dict[str, dict[str, Any]] = {}
    for attempt in build_attempts(workspace, build_hash=build_hash):
        newest.setdefault(attempt["platform"], attempt)
    return list(newest.values())


def _log_tail(workspace: Workspace, build_hash: str) -> tuple[str | None, bool]:
    from kiln.buildinfo import latest_build_log

    path = latest_build_log(workspace, build_hash=build_hash)
    return (None, False) if path is None else tail_text(path)


def _diff(
    workspace: Workspace, record: EnvironmentRecord, against: str, errors: dict[str, str]
) -> dict[str, Any] | None:
    """``kiln env diff OTHER THIS``: the lines it prints, or the error it gives (beside the
    field)."""
    if not against:
        return None
    from kiln.environment.diff import describe, diff

    try:
        other = catalog.get(workspace, *catalog.parse_reference(against))
    except KilnError as exc:
        errors["against"] = " ".join(str(exc).split())
        return None
    result = diff(other.definition, record.definition)
    return {"old": other.reference, "lines": describe(result), "same_build": result.same_build}


def _versions_of(workspace: Workspace, name: str) -> list[str]:
    """The newest versions of the name, newest first, for the diff's choice."""
    found = catalog.list_records(workspace, name=name, all_versions=True, include_archived=True)
    return [record.version for record in found][::-1][:VERSIONS_OFFERED]


def _served_by(workspace: Workspace, reference: str) -> dict[str, list[dict[str, Any]]]:
    """The models registered with this version, and the deployments that serve it."""
    from kiln.serving.deployments import list_deployments
    from kiln.serving.models import list_models

    models = [m.summary() for m in list_models(workspace)]
    deployments = [d.summary() for d in list_deployments(workspace)]
    return {
        "models": [m for m in models if m["environment"] == reference],
        "deployments": [d for d in deployments if d["environment"] == reference],
    }


def _image(workspace: Workspace, record: EnvironmentRecord) -> dict[str, Any] | None:
    """``kiln image show``'s details and Dockerfile of the image built on the server's
    machine, or None when there is none (or the version names no base image to build on)."""
    from kiln import images

    try:
        return images.details(workspace, record, ask_registry=False)
    except KilnError:
        return None


def context(
    workspace: Workspace, record: EnvironmentRecord, against: str, errors: dict[str, str]
) -> dict[str, Any]:
    from kiln.buildinfo import build_attempts, stored_locks
    from kiln.envdetail import shown
    from kiln.formats.base import dump_yaml
    from kiln.lineage import runs_of

    found = shown(workspace, record)
    log, log_cut = _log_tail(workspace, record.build_hash)
    runs = runs_of(workspace, record.name, record.version)
    return {
        "record": record,
        "summary": found.summary,
        "same_build_as": found.same_build_as,
        "registered_by": catalog.registered_by(workspace, record.name, record.version),
        "yaml": dump_yaml(found.definition),
        "locks": stored_locks(workspace, build_hash=record.build_hash),
        "builds": build_attempts(workspace, build_hash=record.build_hash),
        "log": log,
        "log_cut": log_cut,
        "diff": _diff(workspace, record, against, errors),
        "versions": [v for v in _versions_of(workspace, record.name) if v != record.version],
        "runs": runs[:RUNS_SHOWN],
        "run_count": len(runs),
        "address": address(record.name, record.version),
        "building": livebuilds.running(workspace, record.build_hash),
        "image": _image(workspace, record),
        **_served_by(workspace, record.reference),
    }
