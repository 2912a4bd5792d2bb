"""Who is asking: a bearer token checked against the stored hashes, on every API request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kiln.accounts import Actor, authenticate, require_admin, require_writer
from kiln.workspace import Workspace


def workspace_of(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def current_actor(request: Request) -> Actor:
    return authenticate(workspace_of(request), _bearer(request))


def writer(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    require_writer(actor)
    return actor


def admin(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    require_admin(actor)
    return actor


Served = Annotated[Workspace, Depends(workspace_of)]
Reader = Annotated[Actor, Depends(current_actor)]
Writer = Annotated[Actor, Depends(writer)]
Admin = Annotated[Actor, Depends(admin)]
