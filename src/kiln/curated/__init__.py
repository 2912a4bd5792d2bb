"""Curated environments shipped with Kiln under the reserved ``Kiln-`` prefix: read-only.

``index.json`` holds their public summaries so ``kiln env list`` can show them without
importing pydantic; a test keeps it equal to ``summaries()`` (regenerate with
``python -m kiln.curated``)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.environment.definition import EnvironmentDefinition


@lru_cache(maxsize=1)
def definitions() -> tuple[EnvironmentDefinition, ...]:
    from kiln.formats import kiln_yaml

    folder = Path(__file__).parent
    return tuple(kiln_yaml.load(path).definition for path in sorted(folder.glob("*.yaml")))


INDEX = Path(__file__).parent / "index.json"


def summaries() -> list[dict[str, Any]]:
    """Public summaries of the curated definitions, as ``kiln env list --json`` shows them."""
    from kiln.environment.record import curated_record

    return [curated_record(d).summary() for d in definitions()]


def indexed_summaries() -> list[dict[str, Any]]:
    """The same, read from the shipped index (no pydantic import)."""
    data: list[dict[str, Any]] = json.loads(INDEX.read_text(encoding="utf-8"))
    return data


def write_index() -> None:
    INDEX.write_text(json.dumps(summaries(), indent=2) + "\n", encoding="utf-8")
