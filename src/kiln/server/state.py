"""The workspace a server process serves, handed to its workers by environment variable (uvicorn
starts each worker by importing the app factory, so nothing else reaches them)."""

from __future__ import annotations

import os

from kiln.errors import WorkspaceError
from kiln.workspace import Workspace

WORKSPACE_VARIABLE = "KILN_SERVER_WORKSPACE"


def served_workspace() -> Workspace:
    path = os.environ.get(WORKSPACE_VARIABLE)
    if not path:
        raise WorkspaceError(
            f"{WORKSPACE_VARIABLE} is not set; start the server with `kiln server`"
        )
    return Workspace(path)
