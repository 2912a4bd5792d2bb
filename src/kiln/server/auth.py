"""Who is asking: a bearer token checked against the stored hashes, on every API request.

A token verified against the registry is remembered for ``TOKEN_CACHE_SECONDS`` (by its sha256,
in this process only), so a burst of reads costs one token lookup, not one each. The price is a
window: a token revoked, expired or demoted elsewhere (another worker, the CLI on the server
host) keeps working in this process for at most that long. A write handled by this process
(a revocation, a logout) empties the cache when it is done, so changes made through the same
worker take effect at once. ``KILN_SERVER_TOKEN_CACHE_SECONDS=0`` turns the cache off.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from kiln.accounts import Actor, authenticate, hash_token, require_admin, require_writer
from kiln.workspace import Workspace

CACHE_VARIABLE = "KILN_SERVER_TOKEN_CACHE_SECONDS"
TOKEN_CACHE_SECONDS = 5.0
_CACHE_SIZE = 4096  # tokens in use at once; past it the cache starts over
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class TokenCache:
    """Actors of recently verified tokens, keyed by the token's sha256, each for ``seconds``."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._actors: dict[str, tuple[Actor, float]] = {}

    def get(self, digest: str) -> Actor | None:
        found = self._actors.get(digest)
        if found is None:
            return None
        if self._clock() >= found[1]:
            self._actors.pop(digest, None)
            return None
        return found[0]

    def put(self, digest: str, actor: Actor) -> None:
        if self.seconds <= 0:
            return
        if len(self._actors) >= _CACHE_SIZE:
            self._actors.clear()
        self._actors[digest] = (actor, self._clock() + self.seconds)

    def clear(self) -> None:
        self._actors.clear()


def token_cache() -> TokenCache:
    """The cache for a new application, its lifetime from the environment (default 5 s)."""
    text = os.environ.get(CACHE_VARIABLE, "")
    try:
        seconds = float(text) if text else TOKEN_CACHE_SECONDS
    except ValueError:
        seconds = TOKEN_CACHE_SECONDS
    return TokenCache(max(0.0, min(seconds, 60.0)))


class ForgetTokensAfterWrites:
    """ASGI middleware: after any request that may write (a token revoked, a role changed, a
    session closed), this process verifies every token again."""

    def __init__(self, app: ASGIApp, cache: TokenCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READS:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.cache.clear()


def workspace_of(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


async def _served(request: Request) -> Workspace:  # async: no thread hop for an attribute
    return workspace_of(request)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def current_actor(request: Request) -> Actor:
    """The token's actor: from the cache, else verified in a worker thread (a registry read)."""
    token = _bearer(request)
    cache: TokenCache = request.app.state.tokens
    digest = hash_token(token) if token else None
    if digest is not None:
        actor = cache.get(digest)
        if actor is not None:
            return actor
    actor = await run_in_threadpool(authenticate, workspace_of(request), token)
    if digest is not None:
        cache.put(digest, actor)
    return actor


async def writer(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    require_writer(actor)
    return actor


async def admin(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    require_admin(actor)
    return actor


Served = Annotated[Workspace, Depends(_served)]
Reader = Annotated[Actor, Depends(current_actor)]
Writer = Annotated[Actor, Depends(writer)]
Admin = Annotated[Actor, Depends(admin)]
