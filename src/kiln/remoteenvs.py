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


def query(
    *,
    all_versions: bool,
    include_archived: bool,
    name_contains: str | None,
    tags: dict[str, str | None] | None,
    include_curated: bool,
    include_anonymous: bool,
) -> dict[str, Any]:
    """The list endpoint's parameters for the core's listing filters."""
    return {
        "all_versions": all_versions,
        "archived": include_archived,
        "search": name_contains,
        "tag": [k if v is None else f"{k}={v}" for k, v in (tags or {}).items()],
        "curated": include_curated,
        "anonymous": include_anonymous,
    }


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


def list_records(
    workspace: Workspace, *, name: str | None = None, **filters: Any
) -> list[EnvironmentRecord]:
    """Whole records (definitions included) of every matching version; ``filters`` are
    ``query``'s."""
    from kiln.environment.validation import validate_definition

    params = query(**filters)
    params["search"] = params["search"] or name  # narrows the answer; the name is exact below
    found = list_versions(workspace, definitions=True, **params)
    return [
        _record(entry, validate_definition(entry["definition"], source="the server", stored=True))
        for entry in found
        if name is None or entry["name"] == name
    ]


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


def detail(
    workspace: Workspace, name: str, version: str | None, *, digests: bool = False
) -> dict[str, Any]:
    """``env show --json`` of one version, from the server; ``digests`` adds those of its
    local files (kiln.serverinputs fetches them by digest)."""
    params = {"digests": "true"} if digests else None
    found: dict[str, Any] = client(workspace).request("GET", _path(name, version), params=params)
    return found


def get(workspace: Workspace, name: str, version: str | None) -> EnvironmentRecord:
    from kiln.environment.validation import validate_definition

    found = detail(workspace, name, version, digests=True)
    definition = validate_definition(found["definition"], source="the server", stored=True)
    return _record(found, definition)


def register(workspace: Workspace, definition: EnvironmentDefinition) -> RegisterResult:
    from kiln.formats.kiln_yaml import to_data

    # With the digests of its local inputs, which the caller has uploaded (kiln.serverinputs).
    body = to_data(definition, digests=True)
    answer = client(workspace).request("POST", "/environments", json=body)
    return RegisterResult(_record(answer, definition), answer["created"])


def set_archived(workspace: Workspace, name: str, version: str | None, *, archived: bool) -> int:
    from urllib.parse import quote

    action = "archive" if archived else "restore"
    params = {"version": version} if version is not None else None
    answer = client(workspace).request(
        "POST", f"/environments/{quote(name, safe='')}/{action}", params=params
    )
    return int(answer["versions_changed"])


def set_tags(
    workspace: Workspace, name: str, version: str | None, *, add: dict[str, str], remove: list[str]
) -> EnvironmentRecord:
    """Tags of one version (the latest when ``version`` is None, as on a local workspace)."""
    record = get(workspace, name, version)
    change = {"add": add, "remove": remove}
    answer = client(workspace).request("POST", _path(name, record.version) + "/tags", json=change)
    return _record(answer, record.definition)
