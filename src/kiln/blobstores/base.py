"""What a blob store is: bytes kept by their sha256, written atomically, optionally reachable
through presigned URLs so big transfers bypass the server.

Every backend keeps one promise: a blob is visible under a digest only once its bytes were hashed
and found equal to it. Uploads land under a temporary name (a staging file, a staging key) and
are moved into place after the check; an upload cut off midway, or one that hashes to another
digest, leaves nothing under the digest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple, Protocol

from kiln.errors import InvalidRequest

_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_digest(digest: str) -> str:
    """``digest`` when it is a sha256 in lowercase hex, else one line naming the fix."""
    if not _SHA256.fullmatch(digest):
        shown = digest if len(digest) <= 80 else f"{digest[:77]}..."
        raise InvalidRequest(
            f"`sha256`: {shown!r} is not a sha256 digest; give 64 lowercase hex digits"
        )
    return digest


class Readable(Protocol):
    """An open blob: ``read(n)`` until it returns b"", then ``close()``."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class PresignedUpload(NamedTuple):
    """Where to PUT the bytes (no token needed), and the id to name when committing them."""

    url: str
    upload_id: str
    expires_in: int


class BlobStore(Protocol):
    """A content-addressed store. ``put`` and ``commit_upload`` verify before anything becomes
    visible; ``open`` raises NotFound for a missing blob."""

    def put(self, chunks: Iterable[bytes], *, expected: str | None = None) -> str:
        """Store the bytes; return their sha256 (DigestMismatch when not ``expected``)."""
        ...

    def open(self, digest: str) -> Readable: ...

    def size(self, digest: str) -> int | None:
        """The blob's size in bytes, or None when there is no such blob."""
        ...

    def upload_url(self, digest: str, *, expires_in: int) -> PresignedUpload | None:
        """A presigned PUT to a staging name, or None: upload through the server instead."""
        ...

    def commit_upload(self, digest: str, upload_id: str) -> None:
        """Check what a presigned upload staged and move it under ``digest`` (idempotent)."""
        ...

    def download_url(self, digest: str, *, expires_in: int) -> str | None:
        """A presigned GET of the blob, or None: download through the server instead."""
        ...


def read_chunks(blob: Readable, chunk: int) -> Iterator[bytes]:
    """The blob's bytes in pieces of at most ``chunk``; closes it at the end."""
    try:
        while data := blob.read(chunk):
            yield data
    finally:
        blob.close()
