"""A team server's accounts, tokens and audit trail."""

from __future__ import annotations

from typing import Literal

from kiln.schemas.base import Public

Role = Literal["reader", "contributor", "admin"]


class Account(Public):
    """Who a token stands for (``kiln login``)."""

    name: str
    role: Role


class Token(Public):
    """``token list``, ``token revoke``: a token's record, never the token itself."""

    id: int
    name: str
    owner: str
    created_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    expires_at: str | None = None  # None: until revoked


class TokenCreated(Public):
    """``server create-admin`` and ``token create``: the token, shown this once only."""

    id: int
    name: str
    owner: str
    role: Role
    token: str


class AuditEntry(Public):
    """``audit``: one write, who made it and when."""

    actor: str
    action: str
    object: str
    at: str | None
