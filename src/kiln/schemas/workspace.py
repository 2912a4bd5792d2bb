"""The workspace itself and the private wheels it stores."""

from __future__ import annotations

from kiln.schemas.base import Public


class WorkspaceInfo(Public):
    """``init``."""

    path: str
    registry: str  # the database, password hidden


class SharedSettings(Public):
    """What a server's clients build with: the team's image registry and default base image,
    and where Pythons the machines lack come from."""

    image_registry: str | None
    base_image: str | None
    python_downloads: str | None
    python_mirror: str | None


class Wheel(Public):
    """``wheel list``: a private wheel stored in the workspace (``wheel:FILENAME`` entries)."""

    name: str
    version: str
    filename: str
    sha256: str
    size: int
    added_at: str
    entry: str


class WheelAdded(Wheel):
    """``wheel add``: the wheel, and False when the same file was stored already."""

    added: bool
