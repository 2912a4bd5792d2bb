"""Artifacts on a team server, from a client: ``upload`` a file or bytes and get its sha256,
``download`` a sha256 to a file. Presigned URLs are used when the server offers them (an S3
store), so big transfers bypass the server; otherwise the bytes stream through it. Whatever the
route, a download is checked against its sha256 before it appears at its destination.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path

from kiln.artifacts import CHUNK, DigestMismatch, publish_chunks
from kiln.httpclient import ServerClient, streamed

QUERY_BATCH = 5000  # digests per ``missing`` request (the server takes up to 10,000)


def _chunks(source: Path | bytes) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    with source.open("rb") as data:
        while chunk := data.read(CHUNK):
            yield chunk


def _sha256(source: Path | bytes) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    for chunk in _chunks(source):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def missing(client: ServerClient, digests: Iterable[str]) -> set[str]:
    """Which of ``digests`` the server's store lacks, asked in a few requests."""
    wanted = sorted(set(digests))
    lacking: set[str] = set()
    for start in range(0, len(wanted), QUERY_BATCH):
        body = {"sha256": wanted[start : start + QUERY_BATCH]}
        lacking.update(client.request("POST", "/artifacts/missing", json=body)["missing"])
    return lacking


def upload(
    client: ServerClient, source: Path | bytes, *, known: tuple[str, int] | None = None
) -> str:
    """Store ``source`` on the server (once: a digest it holds is not sent again); its sha256.
    ``known`` is its (sha256, size) when already computed; the server checks it anyway."""
    digest, size = known or _sha256(source)
    offer = client.request("POST", f"/artifacts/{digest}/upload-url")
    if offer["exists"]:
        return digest
    length = {"Content-Length": str(size)}  # S3 refuses a chunked PUT
    if offer["url"]:
        with streamed("PUT", offer["url"], headers=length, content=_chunks(source)):
            pass
        client.request(
            "POST", f"/artifacts/{digest}/commit", json={"upload_id": offer["upload_id"]}
        )
    else:
        headers = {**client.auth_headers(), **length}
        with streamed(
            "PUT", client.api_url(f"/artifacts/{digest}"), headers=headers, content=_chunks(source)
        ):
            pass
    return digest


def _damaged(destination: Path, expected: str, found: str) -> DigestMismatch:
    return DigestMismatch(
        expected,
        found,
        what=f"the artifact downloaded for {destination}",
        fix="nothing was written; the server's copy is damaged: upload the file again",
    )


def download(client: ServerClient, digest: str, destination: Path) -> Path:
    """Write the artifact ``digest`` to ``destination`` (replacing it), only if its bytes hash to
    ``digest``; NotFound when the server has no such artifact."""
    offer = client.request("GET", f"/artifacts/{digest}/download-url")
    if offer["url"]:  # presigned: never send the Kiln token to the object store
        url, headers = offer["url"], {}
    else:
        url, headers = client.api_url(f"/artifacts/{digest}"), client.auth_headers()
    with streamed("GET", url, headers=headers) as answer:
        publish_chunks(
            answer.iter_bytes(CHUNK),
            lambda _found: destination,
            staging=destination.parent,
            expected=digest,
            mismatch=partial(_damaged, destination),
            durable=False,  # a copy: the server keeps the original (fsync here costs ~2x)
        )
    return destination
