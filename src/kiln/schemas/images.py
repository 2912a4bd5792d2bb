"""Environments as OCI images: what was built or pulled, and what an image holds."""

from __future__ import annotations

from kiln.schemas.base import Public


class BaseImage(Public):
    """The base an image is built on, pinned by digest."""

    reference: str
    digest: str


class Image(Public):
    """An environment's image (``image build``, ``image list``, ``image push|pull``).
    ``action``: ``built``, ``pulled`` (from the workspace's registry) or ``present`` (this
    machine had it)."""

    environment: str  # NAME:VERSION
    build_hash: str
    lock_digest: str
    image: str  # the engine store's reference, localhost/kiln/env:KEY
    digest: str  # sha256:... of its manifest
    action: str
    registry: str | None  # the workspace's registry, None for the engine store only
    remote: str | None  # its reference in that registry
    base: BaseImage | None


class ImageDetail(Image):
    """``image show``: the image and what it is made of, as Azure ML's get_image_details."""

    exists_in_registry: bool | None  # None without a registry
    size_bytes: int | None
    layers: int | None
    interpreter: str
    dockerfile: str  # a Dockerfile that builds the equivalent image


class OutdatedImage(Public):
    """``image outdated``: a version whose lock pins a base digest its tag no longer names."""

    environment: str
    build_hash: str
    lock_generation: int
    base: str
    pinned_digest: str
    current_digest: str
