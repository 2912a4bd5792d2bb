"""``kiln ui``: the UI of a local workspace, for its owner, on 127.0.0.1.

Why no login: whoever can open the workspace's files already has every right over it, so a
login would protect nothing; the owner acts as ``local:USER`` with an admin's rights, as the
CLI does. Other local processes and web pages are kept out all the same: the server listens
on 127.0.0.1 only, answers only requests addressed to 127.0.0.1 or localhost (a page of
another site that rebinds its name to 127.0.0.1 gets 400), and every form carries a token
derived from a secret made anew at each start (another site's page cannot read it).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from kiln.accounts import Actor, local_actor

if TYPE_CHECKING:
    from fastapi import FastAPI

    from kiln.workspace import Workspace

HOST = "127.0.0.1"


def made_local(app: FastAPI) -> FastAPI:
    """``app`` (from ``create_app``) made the owner's: no login, only 127.0.0.1's hosts."""
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app.state.ui_local_actor = Actor(local_actor(), "admin")
    app.state.ui_secret = secrets.token_urlsafe(32)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=[HOST, "localhost"])
    return app


def serve(workspace: Workspace, app: FastAPI, *, port: int) -> None:
    import uvicorn

    print(f"Kiln UI for {workspace.path} at http://{HOST}:{port}/ (Ctrl-C stops it)", flush=True)
    local = made_local(app)
    uvicorn.run(local, host=HOST, port=port, server_header=False, log_level="warning")
