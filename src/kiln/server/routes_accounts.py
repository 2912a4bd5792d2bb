"""Who am I, tokens, and the audit trail (admins)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from kiln import accounts
from kiln.schemas.accounts import Account, AuditEntry, Token, TokenCreated
from kiln.server.auth import Admin, Reader, Served

router = APIRouter(tags=["accounts"])


@router.get("/whoami", response_model=Account)
def whoami(actor: Reader) -> dict[str, Any]:
    return {"name": actor.name, "role": actor.role}


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str
    role: str | None = None
    name: str = "cli"
    expires_in_days: float | None = None  # None: until revoked


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(workspace: Served, actor: Reader, request: TokenRequest) -> dict[str, Any]:
    """Admins: a token for any user (made, or given ``role``). Others: one more for themselves."""
    made = accounts.create_token(
        workspace,
        actor,
        owner=request.owner,
        role=request.role,
        label=request.name,
        expires_in_days=request.expires_in_days,
    )
    return made._asdict()


@router.get("/tokens", response_model=list[Token])
def list_tokens(workspace: Served, actor: Reader) -> list[dict[str, Any]]:
    return accounts.list_tokens(workspace, actor)


@router.post("/tokens/{token_id}/revoke", response_model=Token)
def revoke_token(workspace: Served, actor: Reader, token_id: int) -> dict[str, Any]:
    return accounts.revoke_token(workspace, actor, token_id)


@router.get("/audit", response_model=list[AuditEntry])
def audit(
    workspace: Served,
    actor: Admin,
    since: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=accounts.MAX_AUDIT_PAGE)] = accounts.AUDIT_PAGE,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Writes, newest first, ``limit`` at a time (``offset`` skips that many of the newest);
    ``since`` is an ISO-8601 time (UTC unless it says otherwise)."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.timezone.utc)
    return accounts.audit_entries(workspace, since=since, limit=limit, offset=offset)
