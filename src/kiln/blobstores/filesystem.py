"""The default blob store: the served workspace's artifact folder (``ArtifactStore``), so blobs
the server's own builds and runs store are the ones clients download. No presigned URLs: bytes
stream through the server."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from kiln.artifacts import ArtifactStore
from kiln.blobstores.base import PresignedUpload, Readable
from kiln.errors import NotFound, UsageError

# A staging file this old belongs to an upload whose server died: none takes a day.
ABANDONED_AFTER = 24 * 3600


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.store = ArtifactStore(root)
        self._sweep(root / "sha256")

    @staticmethod
    def _sweep(staging: Path) -> None:
        """Remove staging files left by a server killed mid-upload (never visible, only
        wasted space); recent ones may belong to a live upload of another worker."""
        cutoff = time.time() - ABANDONED_AFTER
        for leftover in staging.glob(".incoming-*"):
            try:
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
            except FileNotFoundError:
                continue  # finished or swept by another worker meanwhile

    def put(self, chunks: Iterable[bytes], *, expected: str | None = None) -> str:
        return self.store.put_chunks(chunks, expected=expected)

    def open(self, digest: str) -> Readable:
        try:
            return self.store.blob_path(digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"no artifact with sha256 {digest}; upload it first") from None

    def size(self, digest: str) -> int | None:
        try:
            return self.store.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def upload_url(self, digest: str, *, expires_in: int) -> PresignedUpload | None:
        return None

    def commit_upload(self, digest: str, upload_id: str) -> None:
        raise UsageError(
            "this server keeps artifacts on its file system and hands out no upload URLs; "
            f"PUT the bytes to /api/v1/artifacts/{digest}"
        )

    def download_url(self, digest: str, *, expires_in: int) -> str | None:
        return None
