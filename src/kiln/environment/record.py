"""A registered (or curated) environment version: its definition, digests and registry facts
(the ``NAME[:VERSION]`` references that name one are parsed in reference.py). Pure: no storage,
no I/O."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from kiln.environment.canonical import build_hash, definition_digest
from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.validation import validate_definition


class EnvironmentRecord:
    """A registered (or curated) version: its definition, digests and registry facts."""

    def __init__(
        self,
        *,
        definition_json: str | None = None,
        definition: EnvironmentDefinition | None = None,
        name: str,
        version: str,
        description: str | None,
        tags: dict[str, str],
        definition_digest: str,
        build_hash: str,
        created_at: dt.datetime | None,
        archived: bool = False,
        curated: bool = False,
        created_by: str | None = None,
    ) -> None:
        self._json = definition_json
        if definition is not None:
            self.__dict__["definition"] = definition
        self.name, self.version, self.description, self.tags = name, version, description, tags
        self.definition_digest, self.build_hash = definition_digest, build_hash
        self.created_at, self.archived, self.curated = created_at, archived, curated
        self.created_by = created_by  # who registered it (None: curated, or not recorded)

    @cached_property
    def definition(self) -> EnvironmentDefinition:
        data = json.loads(self._json or "{}")
        data.update(
            name=self.name, version=self.version, description=self.description, tags=self.tags
        )
        source = f"the registry entry {self.reference}"
        return validate_definition(data, source=source, stored=True)

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.version}"

    def summary(self) -> dict[str, Any]:
        """Stable public fields (``--json``); never a secret (definitions cannot hold one)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "tags": dict(self.tags),
            "build_hash": self.build_hash,
            "definition_digest": self.definition_digest,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
            "archived": self.archived,
            "curated": self.curated,
        }


@dataclass(frozen=True)
class RegisterResult:
    record: EnvironmentRecord
    created: bool


def curated_record(definition: EnvironmentDefinition) -> EnvironmentRecord:
    return EnvironmentRecord(
        definition=definition,
        name=definition.name,
        version=definition.version or "1",
        description=definition.description,
        tags=dict(definition.tags),
        definition_digest=definition_digest(definition),
        build_hash=build_hash(definition),
        created_at=None,
        curated=True,
    )
