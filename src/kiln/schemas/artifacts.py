"""The shared artifact store of a team server: blobs by sha256, moved directly or through
presigned URLs."""

from __future__ import annotations

from kiln.schemas.base import Public


class ArtifactStored(Public):
    """An artifact the server holds: an upload's answer."""

    sha256: str
    size: int


class ArtifactTransfer(Public):
    """How to move an artifact's bytes: ``url`` is a presigned URL to PUT or GET without a
    token (the store is S3); None means through the server's own
    ``/api/v1/artifacts/{sha256}``. ``exists`` on an upload says there is nothing to send;
    ``upload_id`` names a presigned upload when committing it."""

    sha256: str
    exists: bool
    url: str | None = None
    upload_id: str | None = None
    expires_in: int | None = None


class ArtifactCommit(Public):
    """The body of ``POST /api/v1/artifacts/{sha256}/commit``."""

    upload_id: str


class ArtifactQuery(Public):
    """The body of ``POST /api/v1/artifacts/missing``: digests a client means to upload."""

    sha256: list[str]


class ArtifactsMissing(Public):
    """Which of the asked digests the store lacks (in the order asked): only those are sent."""

    missing: list[str]
