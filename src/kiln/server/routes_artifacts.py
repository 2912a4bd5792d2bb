"""The shared artifact store: blobs by sha256 (wheels, build contexts, snapshots, logs,
outputs, models).

Two ways in and out. Through the server: ``PUT``/``GET /artifacts/{sha256}`` stream the bytes
(uploads skip the 4 MiB body limit and have their own bound). Directly: with an S3 store,
``POST .../upload-url`` hands out a presigned PUT to a staging key and ``POST .../commit``
makes the server read the staged object back, check its sha256 and copy it under the digest;
``GET .../download-url`` hands out a presigned GET. Either way nothing is visible under a
digest before its bytes were checked, and clients check what they download again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from kiln.artifacts import CHUNK
from kiln.blobstores.base import BlobStore, check_digest, read_chunks
from kiln.errors import InvalidRequest, KilnError, NotFound
from kiln.schemas.artifacts import (
    ArtifactCommit,
    ArtifactQuery,
    ArtifactsMissing,
    ArtifactStored,
    ArtifactTransfer,
)
from kiln.server.auth import Reader, Writer

PREFIX = "/artifacts"
MAX_ARTIFACT_BYTES = 64 * 1024**3
URL_LIFETIME = 3600  # seconds a presigned URL stays valid

MAX_QUERY_DIGESTS = 10_000  # per ``missing`` request: about 700 KB of body

router = APIRouter(tags=["artifacts"])
blob = APIRouter(prefix=f"{PREFIX}/{{sha256}}", tags=["artifacts"])


class TooLarge(KilnError):
    exit_code = 2
    status = 413

    def __init__(self) -> None:
        super().__init__(
            f"the artifact is over {MAX_ARTIFACT_BYTES // 1024**3} GiB; nothing was stored"
        )


def store_of(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.artifacts
    return store


Store = Annotated[BlobStore, Depends(store_of)]


def _received(request: Request, loop: asyncio.AbstractEventLoop) -> Iterator[bytes]:
    """The request body as it arrives, in pieces of about a MiB, for other threads (boto3 reads
    from threads of its own, hence the loop rather than anyio's worker-thread portal); raises
    when the client goes away (Starlette's ClientDisconnect) or the body passes the bound, so
    the store keeps nothing."""
    stream = request.stream()

    async def next_piece() -> bytes:
        # Gathered on the loop: one thread hop per MiB, not one per socket read.
        parts: list[bytes] = []
        size = 0
        while size < CHUNK and (chunk := await anext(stream, None)) is not None:
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    size = 0
    while piece := asyncio.run_coroutine_threadsafe(next_piece(), loop).result():
        size += len(piece)
        if size > MAX_ARTIFACT_BYTES:
            raise TooLarge
        yield piece


def _stored(store: BlobStore, digest: str) -> dict[str, Any]:
    size = store.size(digest)
    if size is None:
        raise NotFound(f"no artifact with sha256 {digest}; upload it first")
    return {"sha256": digest, "size": size}


@blob.put("", status_code=201, response_model=ArtifactStored)
async def upload(request: Request, actor: Writer, store: Store, sha256: str) -> dict[str, Any]:
    """Stream the body into the store; kept only if it hashes to ``sha256``."""
    check_digest(sha256)
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_ARTIFACT_BYTES:
        raise TooLarge
    put = partial(store.put, _received(request, asyncio.get_running_loop()), expected=sha256)
    digest = await anyio.to_thread.run_sync(put)
    return await anyio.to_thread.run_sync(_stored, store, digest)


@blob.get("", response_class=StreamingResponse)
def download(actor: Reader, store: Store, sha256: str) -> StreamingResponse:
    size = _stored(store, check_digest(sha256))["size"]
    headers = {"content-length": str(size), "etag": f'"{sha256}"'}
    blob = read_chunks(store.open(sha256), CHUNK)
    return StreamingResponse(blob, media_type="application/octet-stream", headers=headers)


@blob.head("")
def exists(actor: Reader, store: Store, sha256: str) -> Response:
    size = _stored(store, check_digest(sha256))["size"]
    return Response(headers={"content-length": str(size), "etag": f'"{sha256}"'})


@blob.post("/upload-url", response_model=ArtifactTransfer)
def upload_url(actor: Writer, store: Store, sha256: str) -> dict[str, Any]:
    """A presigned PUT (S3), ``exists`` when there is nothing to send, or no URL: PUT here."""
    if store.size(check_digest(sha256)) is not None:
        return {"sha256": sha256, "exists": True}
    presigned = store.upload_url(sha256, expires_in=URL_LIFETIME)
    if presigned is None:
        return {"sha256": sha256, "exists": False}
    return {"sha256": sha256, "exists": False, **presigned._asdict()}


@blob.post("/commit", response_model=ArtifactStored)
def commit(actor: Writer, store: Store, sha256: str, body: ArtifactCommit) -> dict[str, Any]:
    """Check a presigned upload's bytes and make them visible under ``sha256``."""
    store.commit_upload(check_digest(sha256), body.upload_id)
    return _stored(store, sha256)


@blob.get("/download-url", response_model=ArtifactTransfer)
def download_url(actor: Reader, store: Store, sha256: str) -> dict[str, Any]:
    """A presigned GET (S3), or no URL: GET here. 404 when absent."""
    _stored(store, check_digest(sha256))
    url = store.download_url(sha256, expires_in=URL_LIFETIME)
    return {
        "sha256": sha256,
        "exists": True,
        "url": url,
        "expires_in": URL_LIFETIME if url else None,
    }


@router.post(f"{PREFIX}/missing", response_model=ArtifactsMissing)
def missing(actor: Writer, store: Store, body: ArtifactQuery) -> dict[str, Any]:
    """Which of these digests the store lacks: a client uploads only those (a folder of
    unchanged files costs one request)."""
    if len(body.sha256) > MAX_QUERY_DIGESTS:
        raise InvalidRequest(
            f"`sha256`: {len(body.sha256)} digests in one request, over {MAX_QUERY_DIGESTS}; "
            "ask in smaller batches"
        )
    wanted = [check_digest(digest) for digest in body.sha256]
    return {"missing": [digest for digest in wanted if store.size(digest) is None]}


router.include_router(blob)  # after ``blob``'s routes: including copies them
