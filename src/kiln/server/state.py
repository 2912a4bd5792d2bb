"""What a server process serves, handed to its workers by environment variables (uvicorn starts
each worker by importing the app factory, so nothing else reaches them): the workspace, and the
artifact store's URL (which holds no secret: credentials are ``${VAR}`` references or come from
the AWS environment)."""

from __future__ import annotations

import os

from kiln.blobstores import open_blob_store
from kiln.blobstores.base import BlobStore
from kiln.errors import WorkspaceError
from kiln.workspace import Workspace

WORKSPACE_VARIABLE = "KILN_SERVER_WORKSPACE"
ARTIFACTS_VARIABLE = "KILN_SERVER_ARTIFACTS"


def served_workspace() -> Workspace:
    path = os.environ.get(WORKSPACE_VARIABLE)
    if not path:
        raise WorkspaceError(
            f"{WORKSPACE_VARIABLE} is not set; start the server with `kiln server`"
        )
    return Workspace(path)


def served_artifacts(workspace: Workspace, url: str | None) -> BlobStore:
    """The store ``url`` names; without one, the workspace's own artifact folder."""
    if url:
        return open_blob_store(url)
    from kiln.blobstores.filesystem import FileBlobStore

    return FileBlobStore(workspace.root / "artifacts")
