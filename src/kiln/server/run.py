"""Run the application on uvicorn: in this process, or in ``workers`` processes that each
import the factory (``app.from_environment``) and open the workspace themselves."""

from __future__ import annotations

import os

from kiln.server.state import ARTIFACTS_VARIABLE, WORKSPACE_VARIABLE
from kiln.workspace import Workspace


def serve(
    workspace: Workspace,
    *,
    host: str,
    port: int,
    workers: int,
    artifacts: str | None = None,
    access_log: bool = False,
) -> None:
    import uvicorn

    os.environ[WORKSPACE_VARIABLE] = str(workspace.path)
    if artifacts:
        os.environ[ARTIFACTS_VARIABLE] = artifacts
    workspace.close()  # each worker opens its own engine
    uvicorn.run(
        "kiln.server.app:from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        log_level="info",
        access_log=access_log,
    )
