"""Refuse request bodies over a limit with 413 before the application sees them, whether the
client declares their length or streams them in chunks.

Why buffer here: FastAPI turns any error raised while it reads a body into a 400, so a limit
enforced during its read could not answer 413. Bodies are small (a definition is kilobytes;
files go to the artifact store), so the middleware reads the body first, up to the limit, and
hands the application the same bytes. Routes named in ``streamed`` (artifact uploads, gigabytes)
are passed through unread: they stream the body themselves and enforce their own bound.
"""

from __future__ import annotations

import json
from typing import Any

MAX_BODY_BYTES = 4 * 1024 * 1024

Message = dict[str, Any]


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, except for requests whose method
    and path start one of the ``streamed`` pairs (``("PUT", "/api/v1/artifacts/")``)."""

    def __init__(
        self, app: Any, limit: int = MAX_BODY_BYTES, streamed: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.app = app
        self.limit = limit
        self.streamed = streamed

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._streams(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _refuse(send, self.limit)
            return
        body = await _read_up_to(receive, self.limit)
        if body is None:
            await _refuse(send, self.limit)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                later: Message = await receive()  # e.g. http.disconnect, for streaming responses
                return later
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _streams(self, scope: dict[str, Any]) -> bool:
        method, path = scope.get("method", ""), scope.get("path", "")
        return any(method == m and path.startswith(p) for m, p in self.streamed)


async def _read_up_to(receive: Any, limit: int) -> bytes | None:
    """The whole body, or None once it passes ``limit`` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away: the app sees an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _refuse(send: Any, limit: int) -> None:
    detail = f"the request body is over {limit // (1024 * 1024)} MiB; send less"
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the unread rest of the body is not waited for
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
