"""The workspace's own wheels (``kiln wheel add|list`` against a server): the client uploads the
file to the artifact store, then asks the server to record it; the server checks the stored
bytes are a wheel before it does."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from kiln.blobstores.base import check_digest, read_chunks
from kiln.errors import InvalidRequest
from kiln.schemas.workspace import Wheel, WheelAdded
from kiln.server.auth import Reader, Served, Writer
from kiln.server.routes_artifacts import Store

router = APIRouter(prefix="/wheels", tags=["wheels"])


class WheelStored(BaseModel):
    filename: str = Field(max_length=255)
    sha256: str = Field(max_length=64)


@router.get("", response_model=list[Wheel])
def list_wheels(workspace: Served, actor: Reader) -> list[dict[str, Any]]:
    from kiln.wheels import list_wheels as listed
    from kiln.wheels import wheel_document

    return [wheel_document(row) for row in listed(workspace)]


@router.post("", response_model=WheelAdded)
def add_wheel(
    workspace: Served, actor: Writer, store: Store, body: WheelStored, response: Response
) -> dict[str, Any]:
    """Record the wheel the store holds under ``sha256`` as ``filename`` (201), or say it was
    recorded already (200)."""
    from kiln.wheels import check_local_wheel, record_wheel, wheel_document

    digest = check_digest(body.sha256)
    if "/" in body.filename or body.filename in ("", ".", ".."):
        raise InvalidRequest(f"`filename`: {body.filename!r} is not a file name")
    if store.size(digest) is None:
        raise InvalidRequest(
            f"`sha256`: the server's artifact store does not hold {digest}; upload the wheel "
            "first (`kiln wheel add` does)"
        )
    with tempfile.TemporaryDirectory(prefix="kiln-wheel-") as scratch:
        path = Path(scratch) / body.filename
        blob = store.open(digest)
        try:
            with path.open("wb") as sink:
                for chunk in read_chunks(blob, 1 << 20):
                    sink.write(chunk)
        finally:
            blob.close()
        check_local_wheel(path, shown=body.filename)
        result = record_wheel(workspace, path, digest, store_file=False, actor=actor.name)
    response.status_code = 201 if result.added else 200
    return {**wheel_document(result.wheel), "added": result.added}
