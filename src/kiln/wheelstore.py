"""``kiln wheel add|list`` on any workspace: a folder's (kiln.wheels), or a team server's, where
the file goes to the server's artifact store (only what it lacks) and the server records it
after checking the stored bytes are a wheel (kiln.server.routes_wheels)."""

from __future__ import annotations

from pathlib import Path

from kiln import wheels
from kiln.registry.wheel_queries import WheelRow
from kiln.wheels import AddResult
from kiln.workspace import Workspace


def add_wheel(workspace: Workspace, path: Path) -> AddResult:
    if workspace.server_url is None:
        return wheels.add_wheel(workspace, path)
    from kiln.remoteartifacts import upload
    from kiln.remoteenvs import client

    wheels.check_local_wheel(path, shown=path.name)  # one line, before anything is sent
    api = client(workspace)
    digest = upload(api, path)
    answer = api.request("POST", "/wheels", json={"filename": path.name, "sha256": digest})
    return AddResult(wheels.wheel_row(answer), bool(answer["added"]))


def list_wheels(workspace: Workspace) -> list[WheelRow]:
    if workspace.server_url is None:
        return wheels.list_wheels(workspace)
    from kiln.remoteenvs import client

    return [wheels.wheel_row(row) for row in client(workspace).request("GET", "/wheels")]
