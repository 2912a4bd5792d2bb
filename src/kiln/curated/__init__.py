"""Curated environments shipped with Kiln under the reserved ``Kiln-`` prefix: read-only.

``index.json`` holds their public summaries, each with its definition as Kiln YAML data, so
``kiln env list`` and ``kiln env show`` can show them without importing pydantic; a test keeps
it equal to ``index_entries()`` (regenerate with ``python -m kiln.curated``)."""

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

# Words in Azure ML's curated names (AzureML-sklearn-1.0-ubuntu20.04-py38-cpu, AzureML-Minimal,
# AzureML-minimal-ubuntu20.04-py38-cpu-inference, ...) and the Kiln environment for them, the
# first match winning: an inference image is an inference image, whatever else it holds.
_AZURE_EQUIVALENTS = (
    (("inference",), "Kiln-inference-py311"),
    (("sklearn", "scikit"), "Kiln-sklearn-pandas-py311"),
    (("pytorch", "torch"), "Kiln-pytorch-cpu-py311"),
    (("minimal",), "Kiln-minimal-py311"),
)


def equivalent_of(azure_name: str) -> str | None:
    """The curated Kiln environment closest to an Azure ML curated one, if any."""
    lowered = azure_name.lower()
    for words, kiln_name in _AZURE_EQUIVALENTS:
        if any(word in lowered for word in words):
            return kiln_name
    return None


def summaries() -> list[dict[str, Any]]:
    """Public summaries of the curated definitions, as ``kiln env list --json`` shows them."""
    from kiln.environment.record import curated_record

    return [curated_record(d).summary() for d in definitions()]


def index_entries() -> list[dict[str, Any]]:
    """What the index holds: each summary with its ``definition`` (``kiln_yaml.to_data``)."""
    from kiln.formats import kiln_yaml

    return [
        {**summary, "definition": kiln_yaml.to_data(definition)}
        for summary, definition in zip(summaries(), definitions(), strict=True)
    ]


def indexed_entries() -> list[dict[str, Any]]:
    """The same, read from the shipped index (no pydantic import)."""
    data: list[dict[str, Any]] = json.loads(INDEX.read_text(encoding="utf-8"))
    return data


def indexed_summaries() -> list[dict[str, Any]]:
    """The summaries alone, from the shipped index."""
    return [{k: v for k, v in e.items() if k != "definition"} for e in indexed_entries()]


def write_index() -> None:
    INDEX.write_text(json.dumps(index_entries(), indent=2) + "\n", encoding="utf-8")


def sharing_build(build_hash: str, *, besides: str) -> list[str]:
    """``NAME:VERSION`` of the curated versions built as ``build_hash``, but for ``besides``."""
    return [
        f"{c['name']}:{c['version']}"
        for c in indexed_summaries()
        if c["build_hash"] == build_hash and c["name"] != besides
    ]
