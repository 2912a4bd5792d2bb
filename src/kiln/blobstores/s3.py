"""Blobs in an S3-compatible object store (boto3), under ``PREFIX/sha256/DIGEST``.

Atomicity and verification: every upload first lands under a staging key
(``PREFIX/incoming/ID``) that no reader looks at. Streamed through the server, the bytes are hashed
on their way; uploaded through a presigned URL, the server reads the staged object back when the
client commits it. Only bytes that hash to the digest are copied (server side, by S3) to the
digest's key, with ``CopySourceIfMatch`` on the ETag that was read, so an object replaced between
the check and the copy is refused rather than published. The staging key is deleted either way;
one left by a client that never committed is invisible (expire ``PREFIX/incoming/`` with a
lifecycle rule). Clients verify the sha256 of what they download as well.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from kiln.artifacts import CHUNK, DigestMismatch
from kiln.blobstores.base import PresignedUpload, Readable
from kiln.errors import InvalidRequest, NotFound

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
SINGLE_COPY_LIMIT = 5 * 1024**3  # S3's largest CopyObject; larger objects are copied in parts


class _HashingReader:
    """A file-like view of byte chunks for boto3's uploader, hashing what it hands out."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = bytearray()
        self.hasher = hashlib.sha256()

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
        return data


def _missing(error: Any) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.client = client

    def _key(self, digest: str) -> str:
        return f"{self.prefix}sha256/{digest}"

    def _staging(self, upload_id: str) -> str:
        return f"{self.prefix}incoming/{upload_id}"

    def put(self, chunks: Iterable[bytes], *, expected: str | None = None) -> str:
        staging = self._staging(uuid.uuid4().hex)
        reader = _HashingReader(chunks)
        try:
            self.client.upload_fileobj(reader, self.bucket, staging)
            digest = reader.hasher.hexdigest()
            if expected is not None and digest != expected:
                raise DigestMismatch(expected, digest)
            head = self.client.head_object(Bucket=self.bucket, Key=staging)
            self._publish(staging, head["ETag"], int(head["ContentLength"]), digest)
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=staging)
        return digest

    def _publish(self, staging: str, etag: str, size: int, digest: str) -> None:
        """Copy the checked staging object (still the one with ``etag``) under its digest."""
        if self.size(digest) is not None:
            return  # content-addressed: what is there already holds these bytes
        source = {"Bucket": self.bucket, "Key": staging}
        if size <= SINGLE_COPY_LIMIT:  # one request, done inside the store
            self.client.copy_object(
                CopySource=source, CopySourceIfMatch=etag, Bucket=self.bucket, Key=self._key(digest)
            )
        else:  # a multipart copy, each part under the same condition
            extra = {"CopySourceIfMatch": etag}
            self.client.copy(source, self.bucket, self._key(digest), ExtraArgs=extra)

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

    def size(self, digest: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(digest))
        except ClientError as error:
            if _missing(error):
                return None
            raise
        return int(head["ContentLength"])

    def upload_url(self, digest: str, *, expires_in: int) -> PresignedUpload | None:
        upload_id = uuid.uuid4().hex
        url = self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": self._staging(upload_id)},
            ExpiresIn=expires_in,
        )
        return PresignedUpload(url, upload_id, expires_in)

    def commit_upload(self, digest: str, upload_id: str) -> None:
        from botocore.exceptions import ClientError

        if not _UPLOAD_ID.fullmatch(upload_id):
            raise InvalidRequest(
                f"`upload_id`: {upload_id[:40]!r} is not an upload id; use the one upload-url gave"
            )
        staging = self._staging(upload_id)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=staging)
        except ClientError as error:
            if _missing(error):
                raise NotFound(
                    f"nothing was uploaded for upload id {upload_id}; PUT the bytes to its URL first"
                ) from None
            raise
        try:
            hasher = hashlib.sha256()
            for chunk in answer["Body"].iter_chunks(CHUNK):
                hasher.update(chunk)
            if hasher.hexdigest() != digest:
                raise DigestMismatch(digest, hasher.hexdigest())
            self._publish(staging, answer["ETag"], int(answer["ContentLength"]), digest)
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=staging)

    def download_url(self, digest: str, *, expires_in: int) -> str | None:
        if self.size(digest) is None:
            raise NotFound(f"no artifact with sha256 {digest}; upload it first")
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(digest)},
            ExpiresIn=expires_in,
        )
        return url
