"""The committed JSON Schema for Kiln YAML: generated from the model, never stale, and it
accepts what Kiln accepts (and refuses unknown keys, as Kiln does)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from kiln.formats import kiln_yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "schema" / "kiln-environment.schema.json"
CURATED = sorted((REPO / "src" / "kiln" / "curated").glob("*.yaml"))

EXAMPLE = """\
# yaml-language-server: $schema=https://kiln.dev/schema/kiln-environment.schema.json
$schema: https://kiln.dev/schema/kiln-environment.schema.json
name: fraud-scoring
version: "3"
description: Gradient-boosted fraud model behind a private base image.
tags: {team: risk}
python:
  version: "3.11"
  conda:
    channels: [conda-forge]
    packages: [numpy=1.26.4, pip]
  pip:
    packages: [scikit-learn==1.4.2, ./wheels/scorer-1.0-py3-none-any.whl]
    constraints: [urllib3<3]
    index_url: https://pypi.example.com/simple
    extra_index_urls:
      - https://ci:${PYPI_TOKEN}@pkgs.example.com/simple
    find_links: [https://wheels.example.com/]
    pre: true
environment_variables: {OMP_NUM_THREADS: "4"}
docker:
  base_image: registry.example.com/ml/base:2024.05
  base_image_registry: {address: registry.example.com, username: ci-bot, password: "${REG_PW}"}
  platform: {os: linux, architecture: arm64}
spark:
  repositories: [https://repo1.maven.org/maven2]
  packages: [{group: com.microsoft.azure, artifact: synapseml_2.12, version: "1.0.4"}]
  precache_packages: false
inferencing_stack_version: latest
inference_config:
  liveness_route: {path: /health, port: 5001}
  scoring_route: {path: /score, port: 5001}
"""


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(validator: Draft202012Validator, data: Any) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)
    )


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text() == kiln_yaml.json_schema_text(), (
        "schema/kiln-environment.schema.json is stale; regenerate it with "
        "`kiln env schema > schema/kiln-environment.schema.json`"
    )


def test_the_schema_declares_its_dialect_and_address(validator: Draft202012Validator) -> None:
    schema = validator.schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == kiln_yaml.SCHEMA_ID
    assert kiln_yaml.schema_file().is_file()
    assert schema["required"] == ["name"]


def test_a_full_example_validates(validator: Draft202012Validator, tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE)
    assert problems(validator, data) == []
    # ... and Kiln itself accepts the same file (with its wheel present).
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "scorer-1.0-py3-none-any.whl").write_bytes(b"PK")
    (tmp_path / "kiln.yaml").write_text(EXAMPLE)
    assert kiln_yaml.load(tmp_path / "kiln.yaml").definition.name == "fraud-scoring"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d.update(pyton={}),
            ": Additional properties are not allowed ('pyton' was unexpected)",
        ),
        (
            lambda d: d["python"]["pip"].update(package=[]),
            "python/pip: Additional properties are not allowed ('package' was unexpected)",
        ),
        (lambda d: d.pop("name"), ": 'name' is a required property"),
        (
            lambda d: d["python"].update(version=3.11),  # an optional string: anyOf [string, null]
            "python/version: 3.11 is not valid under any of the given schemas",
        ),
        (lambda d: d.update(name="team/env"), "name: 'team/env' does not match "),
        (
            lambda d: d["docker"]["platform"].update(os="macos"),
            "docker/platform: {'os': 'macos', 'architecture': 'arm64'} is not valid under any",
        ),
    ],
)
def test_the_schema_refuses_what_kiln_refuses(
    validator: Draft202012Validator, change: Any, expected: str
) -> None:
    data = yaml.safe_load(EXAMPLE)
    change(data)
    found = problems(validator, data)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_saved_files_validate(validator: Draft202012Validator, tmp_path: Path) -> None:
    """What `save` writes is valid for editors too (it omits Kiln-computed digests)."""
    (tmp_path / "in" / "wheels").mkdir(parents=True)
    (tmp_path / "in" / "wheels" / "scorer-1.0-py3-none-any.whl").write_bytes(b"PK")
    (tmp_path / "in" / "kiln.yaml").write_text(EXAMPLE)
    definition = kiln_yaml.load(tmp_path / "in" / "kiln.yaml").definition
    kiln_yaml.save(definition, tmp_path / "out")
    assert problems(validator, yaml.safe_load((tmp_path / "out" / "kiln.yaml").read_text())) == []


def test_there_are_curated_definitions() -> None:
    assert len(CURATED) >= 4


@pytest.mark.parametrize("path", CURATED, ids=lambda p: p.stem)
def test_curated_definitions_validate(validator: Draft202012Validator, path: Path) -> None:
    assert problems(validator, yaml.safe_load(path.read_text())) == []
