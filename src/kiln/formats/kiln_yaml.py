"""Kiln YAML, the primary format: the definition model written as YAML.

The JSON Schema in ``schema/kiln-environment.schema.json`` is generated from the model
(``kiln.formats.kiln_yaml.json_schema``) and a test keeps the two equal; written files point
editors at it for completion. Digests of local files are always computed by Kiln, never read.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.files import read_text_limited
from kiln.environment.validation import describe
from kiln.errors import InvalidDefinition
from kiln.formats.base import (
    Loaded,
    compose_yaml,
    dump_yaml,
    read_mapping,
    resolve_local_inputs,
    write_files_atomically,
)

FORMAT = "kiln"
DEFAULT_FILE = "kiln.yaml"
SCHEMA_ID = "urn:kiln:schema:environment:1"  # an identifier, not a location


def schema_file() -> Path:
    """The JSON Schema file: shipped inside the package, or the repository's copy in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "kiln-environment.schema.json"
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[3] / "schema" / "kiln-environment.schema.json"


_COMPUTED: dict[str, Any] = {
    "python": {"pip": {"file_digests"}},
    "docker": {"build_context_digest"},
}


def load(path: Path) -> Loaded:
    data = read_mapping(path)
    data.pop("$schema", None)
    _drop_computed(data)
    definition = _validate(data, path=path)
    return Loaded(resolve_local_inputs(definition, path.parent), (), (path,))


def _drop_computed(data: dict[str, Any]) -> None:
    """Digests in a file are never trusted: Kiln computes them from the files themselves."""
    python = data.get("python")
    pip = python.get("pip") if isinstance(python, dict) else None
    for section, key in ((pip, "file_digests"), (data.get("docker"), "build_context_digest")):
        if isinstance(section, dict):
            section.pop(key, None)


def _validate(data: dict[str, Any], *, path: Path) -> EnvironmentDefinition:
    try:
        return EnvironmentDefinition.model_validate(data)
    except ValidationError as exc:
        message = describe(exc, EnvironmentDefinition, str(path)) + _quote_hint(exc, path)
        raise InvalidDefinition(message) from None


def _quote_hint(exc: ValidationError, path: Path) -> str:
    """YAML reads a bare ``3.10`` as the number 3.1 and ``yes`` as true: the usual cause of a
    non-string where text belongs. The fix is quotes around the text as the user wrote it."""
    first = exc.errors()[0]
    value, location = first.get("input"), first["loc"]
    scalar = isinstance(value, (int, float, datetime.date))
    if first["type"] != "string_type" or not location or not scalar:
        return ""
    kind = "a number"
    if isinstance(value, (bool, datetime.date)):
        kind = "true/false" if isinstance(value, bool) else "a date"
    text = _source_text(path, location) or str(value)
    key = location[-1]
    example = f'- "{text}"' if isinstance(key, int) else f'{key}: "{text}"'
    return f"; YAML reads {text} unquoted as {kind}: quote it, e.g. {example}"


def _source_text(path: Path, location: tuple[int | str, ...]) -> str | None:
    """The scalar at ``location`` exactly as written in the file (``3.10``, not 3.1)."""
    node: Any = compose_yaml(read_text_limited(path, field=path.name), source=str(path))
    for part in location:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        elif isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        else:
            return None
    return node.value if isinstance(node, yaml.ScalarNode) else None


def to_data(definition: EnvironmentDefinition, *, digests: bool = False) -> dict[str, Any]:
    """The YAML mapping: defaults left out, and Kiln-computed digests unless ``digests`` (a
    client registering on a server names the stored content its local inputs stand for)."""
    data = definition.model_dump(
        mode="json", exclude_defaults=True, exclude=None if digests else _COMPUTED
    )
    for section in ("python", "docker", "spark"):
        if data.get(section) == {}:
            del data[section]
    return data


def render(definition: EnvironmentDefinition) -> str:
    # Editors with a YAML language server complete and check fields from the installed schema.
    header = f"# yaml-language-server: $schema={schema_file().as_uri()}\n"
    return header + dump_yaml(to_data(definition))


def save(definition: EnvironmentDefinition, path: Path) -> list[Path]:
    target = path if path.suffix in (".yml", ".yaml") else path / DEFAULT_FILE
    return write_files_atomically(target.parent, {target.name: render(definition).encode()})


def json_schema() -> dict[str, Any]:
    schema = EnvironmentDefinition.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "Kiln environment definition"
    schema.setdefault("properties", {})["$schema"] = {"type": "string"}
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def from_data(data: Any, *, source: str, keep_digests: bool = False) -> EnvironmentDefinition:
    """A definition sent as Kiln's JSON form (the server's register): validated as a file is.
    Digests are dropped, never trusted, unless ``keep_digests``: the caller then checks that
    its store holds content under each of them (kiln.server.routes_environments)."""
    if not isinstance(data, dict):
        raise InvalidDefinition(f"the definition in {source} must be a mapping of keys to values")
    data = dict(data)
    data.pop("$schema", None)
    if not keep_digests:
        _drop_computed(data)
    from kiln.environment.validation import validate_definition

    return validate_definition(data, source=source)
