"""environment/stored.py rebuilds a registered definition's Kiln YAML data without pydantic: it
must equal ``kiln_yaml.to_data`` of the definition validated again, key order included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from kiln import catalog
from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.stored import COMPUTED, SHAPE, UnknownShape, yaml_data
from kiln.formats import kiln_yaml
from kiln.workspace import Workspace
from kilntesting.samples import register_samples


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, directly, in a list or as an optional."""
    for arg in (annotation, *getattr(annotation, "__args__", ())):
        for inner in (arg, *getattr(arg, "__args__", ())):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _shape_of(model: type[BaseModel], found: dict[str, dict[str, str | None]]) -> None:
    fields: dict[str, str | None] = {}
    found[model.__name__] = fields
    for name, info in model.model_fields.items():
        nested = _nested_model(info.annotation)
        fields[name] = nested.__name__ if nested else None
        if nested is not None and nested.__name__ not in found:
            _shape_of(nested, found)


def test_the_shape_is_the_models() -> None:
    found: dict[str, dict[str, str | None]] = {}
    _shape_of(EnvironmentDefinition, found)
    assert found == SHAPE
    assert [list(fields) for fields in found.values()] == [list(f) for f in SHAPE.values()]
    # The digests left out are those kiln_yaml leaves out, in the sections that hold them.
    computed = dict(COMPUTED)
    pip, docker = computed.pop("PipSection"), computed.pop("DockerSection")
    assert (computed, pip, docker) == ({}, "file_digests", "build_context_digest")
    assert {"python": {"pip": {pip}}, "docker": {docker}} == kiln_yaml._COMPUTED


def test_stored_json_gives_what_to_data_gives(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    ws = sqlite_workspace
    register_samples(ws, tmp_path / "sources")
    records = catalog.list_records(
        ws, all_versions=True, include_archived=True, include_curated=False
    )
    assert len(records) == 13
    for record in records:
        fast = yaml_data(
            json.loads(record._json or "{}"),
            name=record.name,
            version=record.version,
            description=record.description,
            tags=record.tags,
        )
        full = kiln_yaml.to_data(record.definition)
        assert repr(fast) == repr(full), record.reference
    context = next(r for r in records if r.name == "context")
    assert context.definition.docker.build_context_digest  # computed, and left out above
    assert "build_context_digest" not in repr(kiln_yaml.to_data(context.definition))


@pytest.mark.parametrize(
    "stored",
    [
        {"python": {"conda": {"channels": []}, "venv": True}},  # a key no model has
        {"docker": {"platform": None}},  # null where a model belongs
        {"name": "x"},  # a registry column inside the JSON
        {"spark": {"packages": ["not-a-mapping"]}},
    ],
)
def test_anything_else_is_refused_for_the_full_path(stored: dict[str, Any]) -> None:
    with pytest.raises(UnknownShape):
        yaml_data(stored, name="n", version="1", description=None, tags={})
