"""Environments in a workspace served by ``kiln server``: the core's entry points (``catalog``,
``envlist``) call these when ``workspace.server_url`` is set, so the CLI and the SDK work on a
server as on a folder.

Why at the core's entry points and not lower: the server answers with public documents (a
version's summary, its definition as Kiln data), not registry rows, and every answer is already
what the local core computes. One request per entry point; the token comes from ``KILN_TOKEN`` or
``kiln login`` (kiln.credentials).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from kiln.environment.record import EnvironmentRecord, RegisterResult

if TYPE_CHECKING:
    from kiln.environment.definition import EnvironmentDefinition
    from kiln.httpclient import ServerClient
    from kiln.workspace import Workspace

_PAGE = 1000  # the server's largest page


def client(workspace: Workspace) -> ServerClient:
    from kiln.credentials import login_for
    from kiln.httpclient import ServerClient

    assert workspace.server_url is not None
    return ServerClient(workspace.server_url, login_for(workspace.server_url).token)


def _path(name: str, version: str | None = None) -> str:
    from urllib.parse import quote

    path = f"/environments/{quote(name, safe='')}"
    return path if version is None else f"{path}/versions/{quote(version, safe='')}"


def list_versions(workspace: Workspace, **filters: Any) -> list[dict[str, Any]]:
    """Every matching summary, page by page. ``filters`` are the API's query parameters."""
    params = {k: v for k, v in filters.items() if v not in (None, {}, [])}
    found: list[dict[str, Any]] = []
    api = client(workspace)
    while True:
        page = api.request(
            "GET", "/environments", params={**params, "limit": _PAGE, "offset": len(found)}
        )
        found += page
        if len(page) < _PAGE:
            return found


def _record(summary: dict[str, Any], definition: EnvironmentDefinition) -> EnvironmentRecord:
    created = summary["created_at"]
    return EnvironmentRecord(
        definition=definition,
        name=summary["name"],
        version=summary["version"],
        description=summary["description"],
        tags=summary["tags"],
        definition_digest=summary["definition_digest"],
        build_hash=summary["build_hash"],
        created_at=dt.datetime.fromisoformat(created) if created else None,
        archived=summary["archived"],
        curated=summary["curated"],
        created_by=summary.get("created_by"),
    )


def detail(workspace: Workspace, name: str, version: str | None) -> dict[str, Any]:
    """``env show --json`` of one version, from the server."""
    found: dict[str, Any] = client(workspace).request("GET", _path(name, version))
    return found


def get(workspace: Workspace, name: str, version: str | None) -> EnvironmentRecord:
    from kiln.environment.validation import validate_definition

    found = detail(workspace, name, version)
    definition = validate_definition(found["definition"], source="the server", stored=True)
    return _record(found, definition)


def register(workspace: Workspace, definition: EnvironmentDefinition) -> RegisterResult:
    from kiln.formats.kiln_yaml import to_data

    answer = client(workspace).request("POST", "/environments", json=to_data(definition))
    return RegisterResult(_record(answer, definition), answer["created"])
