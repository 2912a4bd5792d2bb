"""Errors as HTTP: a KilnError's own status and its one-line message (the one the CLI prints),
a malformed request as 422 with one line naming the field, a bug as 500 without details."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from kiln.errors import KilnError
from kiln.secrets import redact
from kiln.server.state import WORKSPACE_VARIABLE

log = logging.getLogger("kiln.server")


def _one_line(text: str) -> str:
    return " ".join(redact(text).split())


def _public(text: str, request: Request) -> str:
    """Where the server keeps its workspace is the host's business, not a client's: messages
    that name the folder (``no environment X in FOLDER``) name the server's URL instead."""
    served = os.environ.get(WORKSPACE_VARIABLE)
    if not served:
        return text
    where = str(request.base_url).rstrip("/")
    for form in sorted({served, str(Path(served).resolve())}, key=len, reverse=True):
        text = text.replace(form, where)
    return text


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    location = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    reason = str(first.get("msg", "is not valid"))
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON; send a JSON object"
    return f"`{location or 'body'}`: {reason}; fix the request and retry"


def install(app: FastAPI) -> None:
    @app.exception_handler(KilnError)
    async def kiln_error(request: Request, exc: KilnError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        detail = _one_line(_public(str(exc), request))
        return JSONResponse({"detail": detail}, exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(_validation_message(exc))}, 422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        # The registry's database went away (a restart, a failover): nothing was committed by
        # this request, the pool reconnects on the next one, and the client may simply retry.
        log.warning("the registry database failed on %s %s: %s", request.method,
                    request.url.path, _one_line(str(exc).splitlines()[0] if str(exc) else ""))  # fmt: skip
        detail = "the server's registry database is not reachable right now; retry shortly"
        return JSONResponse({"detail": detail}, 503, headers={"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server's log (redacted); the client learns only that it failed.
        log.error(
            "unexpected error on %s %s: %s", request.method, request.url.path, redact(repr(exc))
        )
        return JSONResponse({"detail": "unexpected server error; see the server's log"}, 500)
