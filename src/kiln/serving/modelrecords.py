"""A registered model's record and what a registration says: shared by the core
(serving/models.py) and its team-server client (serving/remotemodels.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kiln.errors import InvalidRequest
from kiln.utctime import utc_text


@dataclass
class ModelRecord:
    name: str
    version: int
    digest: str
    kind: str  # file | folder
    file_name: str
    size: int
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    env_name: str | None = None
    env_version: str | None = None
    created_at: float = 0.0
    created_by: str | None = None  # None: registered before Kiln recorded who
    manifest: str | None = None  # a folder's, on a team server (kiln/filetrees.py)

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.version}"

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "id": self.reference,
            "kind": self.kind,
            "file_name": self.file_name,
            "size": self.size,
            "digest": self.digest,
            "description": self.description,
            "tags": self.tags,
            "run_id": self.run_id,
            "environment": f"{self.env_name}:{self.env_version}" if self.env_name else None,
            "created_at": utc_text(self.created_at),
            "created_by": self.created_by,
        }


def check_file_name(file_name: str) -> str:
    """What a model is called where it is downloaded: one name, never a path."""
    if not file_name or file_name in (".", "..") or "/" in file_name or "\\" in file_name:
        raise InvalidRequest(
            f"`file_name`: {file_name!r} is not a file or folder name; give a name without '/'"
        )
    return file_name


class Lineage(NamedTuple):
    """What a registration says about a model beside its content."""

    tags: dict[str, str] | None = None
    description: str | None = None
    run_id: str | None = None
    environment: tuple[str, str] | None = None  # (name, version) of the run's environment


class Stored(NamedTuple):
    """A model's content as the artifact store keeps it."""

    digest: str  # the file's sha256, or the folder's tree digest
    kind: str  # file | folder
    file_name: str
    size: int
    manifest: str | None = None  # a folder's, on a team server
