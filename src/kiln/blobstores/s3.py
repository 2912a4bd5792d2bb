"""Blobs in an S3-compatible object store (boto3), under ``PREFIX/sha256/DIGEST``.

Atomicity and verification: every upload first lands under a staging key
(``PREFIX/incoming/ID``) that no reader looks at. Streamed through the server, the bytes are hashed
on their way; uploaded through a presigned URL, the server reads the staged object back when the
client commits it: first copied (inside the store) to a key no presigned URL names, so a client
that PUTs to its URL again cannot swap the bytes between the check and the publication, then
read back and hashed. Only bytes that hash to the digest are copied to the digest's key. (Copy
conditions such as ``CopySourceIfMatch`` would be cheaper, but Ceph 16 ignores them on
CopyObject.) Staging keys are deleted either way; one left by a client that never committed is
invisible (expire ``PREFIX/incoming/`` with a lifecycle rule). Clients verify the sha256 of what
they download as well.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

from kiln.artifacts import CHUNK, DigestMismatch
from kiln.blobstores.base import PresignedUpload, Readable
from kiln.errors import InvalidRequest, KilnError, NotFound

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
SINGLE_COPY_LIMIT = 5 * 1024**3  # S3's largest CopyObject; larger objects are copied in parts


class _HashingReader:
    """A file-like view of byte chunks for boto3's uploader, hashing what it hands out."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = bytearray()
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        cut = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        data = bytes(self._buffer[:cut])
        del self._buffer[:cut]  # cheap: CPython drops a bytearray's head without copying
        self.hasher.update(data)
        self.size += len(data)
        return data


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _missing(error: Any) -> bool:
    return _code(error) in ("404", "NoSuchKey", "NotFound")


class StoreUnavailable(KilnError):
    """The object store cannot be reached, or refuses the server's own requests."""

    exit_code = 5
    status = 503


P = ParamSpec("P")
T = TypeVar("T")


def _reaching(
    method: Callable[Concatenate[S3BlobStore, P], T],
) -> Callable[Concatenate[S3BlobStore, P], T]:
    """One line naming the store, instead of a 500, when the store fails the server."""

    def wrapper(self: S3BlobStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(self, *args, **kwargs)
        except (BotoCoreError, ClientError) as error:
            reason = _code(error) if isinstance(error, ClientError) else type(error).__name__
            raise StoreUnavailable(
                f"the artifact store s3://{self.bucket}/{self.prefix} failed ({reason}); "
                "check the server's --artifacts URL, its credentials and that the store runs"
            ) from None

    return wrapper


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.client = client

    def _key(self, digest: str) -> str:
        return f"{self.prefix}sha256/{digest}"

    def _staging(self, upload_id: str) -> str:
        return f"{self.prefix}incoming/{upload_id}"

    def _head(self, key: str) -> int | None:
        """The object's size, or None when there is none."""
        from botocore.exceptions import ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as error:
            if _missing(error):
                return None
            raise

    def _copy(self, source: str, target: str, size: int) -> None:
        """A copy made inside the store: one request up to 5 GiB, in parts above."""
        where = {"Bucket": self.bucket, "Key": source}
        if size <= SINGLE_COPY_LIMIT:
            self.client.copy_object(CopySource=where, Bucket=self.bucket, Key=target)
        else:
            self.client.copy(where, self.bucket, target)

    def _delete(self, *keys: str) -> None:
        for key in keys:
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def _publish(self, checked: str, size: int, digest: str) -> None:
        """Copy an object whose bytes were checked, and that no client can write, under its
        digest (unless it is there already: content-addressed, it holds the same bytes)."""
        if self._head(self._key(digest)) is None:
            self._copy(checked, self._key(digest), size)

    @_reaching
    def put(self, chunks: Iterable[bytes], *, expected: str | None = None) -> str:
        staging = self._staging(uuid.uuid4().hex)  # never handed out: only this call writes it
        reader = _HashingReader(chunks)
        try:
            self.client.upload_fileobj(reader, self.bucket, staging)
            digest = reader.hasher.hexdigest()
            if expected is not None and digest != expected:
                raise DigestMismatch(expected, digest)
            self._publish(staging, reader.size, digest)
        finally:
            self._delete(staging)
        return digest

    def _snapshot(self, upload_id: str) -> str:
        """Copy a presigned upload's staging object to a key no URL names, and drop the
        staging object: the client may PUT to its URL again, but not to what is checked."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise InvalidRequest(
                f"`upload_id`: {upload_id[:40]!r} is not an upload id; use the one upload-url gave"
            )
        staging = self._staging(upload_id)
        size = self._head(staging)
        if size is None:
            raise NotFound(
                f"nothing was uploaded for upload id {upload_id}; PUT the bytes to its URL first"
            )
        snapshot = f"{staging}.checking"
        try:
            self._copy(staging, snapshot, size)
        finally:
            self._delete(staging)
        return snapshot

    def _check_and_publish(self, snapshot: str, digest: str) -> None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=snapshot)
            hasher = hashlib.sha256()
            for chunk in answer["Body"].iter_chunks(CHUNK):
                hasher.update(chunk)
            if hasher.hexdigest() != digest:
                raise DigestMismatch(digest, hasher.hexdigest())
            self._publish(snapshot, int(answer["ContentLength"]), digest)
        finally:
            self._delete(snapshot)

    @_reaching
    def commit_upload(self, digest: str, upload_id: str) -> None:
        self._check_and_publish(self._snapshot(upload_id), digest)

    @_reaching
    def open(self, digest: str) -> Readable:
        from botocore.exceptions import ClientError

        try:
            body: Readable = self.client.get_object(Bucket=self.bucket, Key=self._key(digest))[
                "Body"
            ]
        except ClientError as error:
            if _missing(error):
                raise NotFound(f"no artifact with sha256 {digest}; upload it first") from None
            raise
        return body

    @_reaching
    def size(self, digest: str) -> int | None:
        return self._head(self._key(digest))

    def upload_url(self, digest: str, *, expires_in: int) -> PresignedUpload | None:
        upload_id = uuid.uuid4().hex
        url = self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": self._staging(upload_id)},
            ExpiresIn=expires_in,
        )
        return PresignedUpload(url, upload_id, expires_in)

    @_reaching
    def download_url(self, digest: str, *, expires_in: int) -> str | None:
        if self.size(digest) is None:
            raise NotFound(f"no artifact with sha256 {digest}; upload it first")
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(digest)},
            ExpiresIn=expires_in,
        )
        return url
