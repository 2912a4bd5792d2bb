"""Kiln YAML, the primary format: the definition model written as YAML.

The JSON Schema in ``schema/kiln-environment.schema.json`` is generated from the model
(``kiln.formats.kiln_yaml.json_schema``) and a test keeps the two equal; written files point
editors at it for completion. Digests of local files are always computed by Kiln, never read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.validation import validate_definition
from kiln.formats.base import Loaded, dump_yaml, read_mapping, resolve_local_inputs
from kiln.formats.base import write_files_atomically

FORMAT = "kiln"
DEFAULT_FILE = "kiln.yaml"
SCHEMA_URL = "https://kiln.dev/schema/kiln-environment.schema.json"
_COMPUTED = ({"python": {"pip": {"file_digests"}}, "docker": {"build_context_digest"}})


def load(path: Path) -> Loaded:
    data = read_mapping(path)
    data.pop("$schema", None)
    definition = validate_definition(data, source=str(path))
    return Loaded(resolve_local_inputs(definition, path.parent), (), (path,))


def to_data(definition: EnvironmentDefinition) -> dict[str, Any]:
    """The YAML mapping: defaults and Kiln-computed digests left out."""
    data = definition.model_dump(mode="json", exclude_defaults=True, exclude=_COMPUTED)
    for section in ("python", "docker", "spark"):
        if data.get(section) == {}:
            del data[section]
    return data


def render(definition: EnvironmentDefinition) -> str:
    header = f"# yaml-language-server: $schema={SCHEMA_URL}\n"
    return header + dump_yaml(to_data(definition))


def save(definition: EnvironmentDefinition, path: Path) -> list[Path]:
    target = path if path.suffix in (".yml", ".yaml") else path / DEFAULT_FILE
    return write_files_atomically(target.parent, {target.name: render(definition).encode()})


def json_schema() -> dict[str, Any]:
    schema = EnvironmentDefinition.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_URL
    schema["title"] = "Kiln environment definition"
    schema.setdefault("properties", {})["$schema"] = {"type": "string"}
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
