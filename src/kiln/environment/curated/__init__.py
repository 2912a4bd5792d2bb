"""Curated environments shipped with Kiln under the reserved ``Kiln-`` prefix: read-only."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from kiln.environment.definition import EnvironmentDefinition


@lru_cache(maxsize=1)
def definitions() -> tuple[EnvironmentDefinition, ...]:
    from kiln.formats import kiln_yaml

    folder = Path(__file__).parent
    return tuple(kiln_yaml.load(path).definition for path in sorted(folder.glob("*.yaml")))
