"""Deployment records kept by a team server (``/api/v1/deployment-records``): the
DeploymentBook of a workspace served by ``kiln server``. Each call is one request with this
machine's token, so the server decides who may write what (kiln.serving.serveddeployments).

Records travel as documents: the stored row with its JSON columns (``spec``, ``containers``)
as JSON values rather than text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kiln.errors import NotFound

if TYPE_CHECKING:
    from kiln.serving.deploymentbook import NewDeployment
    from kiln.workspace import Workspace

RECORDS = "/deployment-records"
JSON_COLUMNS = ("spec", "containers")


def document_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored deployment row (or some of its columns) as the API sends it."""
    return {k: json.loads(v) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()}


def row_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """A deployment document (or some of its fields) as the registry stores it."""
    return {
        k: json.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in document.items()
    }


def record_path(name: str, *rest: str) -> str:
    return "/".join([RECORDS, quote(name, safe=""), *rest])


class ServerDeployments:
    def __init__(self, workspace: Workspace) -> None:
        from kiln.registry.server_runs import client_for

        assert workspace.server_url is not None
        self.api = client_for(workspace.server_url)

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return row_of(self.api.request("GET", record_path(name)))
        except NotFound:
            return None

    def list(self) -> list[dict[str, Any]]:
        return [row_of(d) for d in self.api.request("GET", RECORDS)]

    def create(self, new: NewDeployment, *, replaces: str | None) -> None:
        body = {"record": document_of(new._asdict()), "replaces": replaces}
        self.api.request("POST", RECORDS, json=body)

    def set_fields(self, name: str, values: Mapping[str, Any]) -> None:
        self.api.request("PATCH", record_path(name), json={"values": document_of(values)})

    def request_generation(self, name: str, spec: str, state: str) -> int | None:
        body = {"spec": json.loads(spec), "state": state}
        number = self.api.request("POST", record_path(name, "generations"), json=body)
        return None if number["generation"] is None else int(number["generation"])

    def delete(self, name: str) -> bool:
        return bool(self.api.request("DELETE", record_path(name))["deleted"])

    def check_may_change(self, name: str) -> None:
        self.api.request("GET", record_path(name, "may-change"))
