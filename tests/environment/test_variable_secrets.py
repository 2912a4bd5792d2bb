"""A secret-looking environment variable is refused in plain text with the ``${VAR}`` fix
wherever a definition is read (issue 15, the variables half of case 7), as index passwords
are; a definition registered before the rule stays readable."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from kiln import Environment
from kiln.environment.canonical import build_hash, definition_digest
from kiln.environment.record import EnvironmentRecord
from kiln.environment.validation import validate_definition
from kiln.errors import InvalidDefinition
from kiln.formats import azure_v1, azure_v2, conda_env, kiln_yaml

TOKEN = "tok-Sw0rdfish-plain"
FIX = "write API_TOKEN: ${API_TOKEN} and set it where the environment runs"


def _kiln_yaml(folder: Path) -> Path:
    data = {"name": "v", "environment_variables": {"API_TOKEN": TOKEN}}
    (folder / "kiln.yaml").write_text(yaml.safe_dump(data))
    return folder / "kiln.yaml"


def _conda_env(folder: Path) -> Path:
    data = {"name": "v", "dependencies": ["python=3.11"], "variables": {"API_TOKEN": TOKEN}}
    (folder / "environment.yml").write_text(yaml.safe_dump(data))
    return folder / "environment.yml"


def _azure_v1(folder: Path) -> Path:
    data = {"name": "v", "environmentVariables": {"API_TOKEN": TOKEN}}
    (folder / azure_v1.DEFINITION_FILE).write_text(json.dumps(data))
    return folder


def _azure_v2(folder: Path) -> Path:
    conda = {"dependencies": ["python=3.11"], "variables": {"API_TOKEN": TOKEN}}
    (folder / "environment.yaml").write_text(yaml.safe_dump({"name": "v", "conda_file": conda}))
    return folder / "environment.yaml"


LOADERS: dict[str, tuple[Callable[[Path], Path], Callable[[Path], object]]] = {
    "kiln": (_kiln_yaml, kiln_yaml.load),
    "conda": (_conda_env, conda_env.load),
    "azure-v1": (_azure_v1, azure_v1.load),
    "azure-v2": (_azure_v2, azure_v2.load),
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_format_refuses_a_plain_secret_variable(kind: str, tmp_path: Path) -> None:
    write, load = LOADERS[kind]
    with pytest.raises(InvalidDefinition) as caught:
        load(write(tmp_path))
    message = caught.value.message
    assert "`environment_variables`" in message and FIX in message
    assert TOKEN not in message and "\n" not in message


def test_sdk_assignment_refuses_it_and_keeps_what_was_there() -> None:
    env = Environment("v")
    env.environment_variables = {"MODE": "fast"}
    with pytest.raises(InvalidDefinition) as caught:
        env.environment_variables = {"MODE": "fast", "API_TOKEN": TOKEN}
    assert FIX in caught.value.message and TOKEN not in caught.value.message
    assert env.environment_variables == {"MODE": "fast"}


@pytest.mark.parametrize("value", ["${API_TOKEN}", "${OTHER_NAME}", ""])
def test_a_reference_or_an_empty_value_is_accepted(value: str) -> None:
    definition = validate_definition({"name": "v", "environment_variables": {"API_TOKEN": value}})
    assert definition.environment_variables == {"API_TOKEN": value}


def test_a_definition_stored_before_the_rule_stays_readable() -> None:
    stored = {
        "environment_variables": {"API_TOKEN": TOKEN},
        "python": {"conda": {"channels": [f"https://carol:{TOKEN}@conda.example/c"]}},
    }
    record = EnvironmentRecord(
        definition_json=json.dumps(stored),
        name="old",
        version="1",
        description=None,
        tags={},
        definition_digest="0" * 64,
        build_hash="0" * 64,
        created_at=None,
    )
    definition = record.definition
    assert definition.environment_variables == {"API_TOKEN": TOKEN}
    assert build_hash(definition) and definition_digest(definition)  # still computable
    with pytest.raises(InvalidDefinition, match=r"plain-text password.*and 1 more problem"):
        validate_definition({**stored, "name": "new"})  # new input is always checked
