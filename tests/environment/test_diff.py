"""diff: what changed between two definitions, by normalized package name, with secrets
redacted, and whether the build (and the definition) stayed the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.diff import describe, diff
from kiln.environment.validation import validate_definition
from kiln.formats.base import resolve_local_inputs


def definition(
    pip: list[str] | None = None,
    conda: list[str] | None = None,
    python: str = "3.11",
    image: str | None = "python:3.11-slim",
    variables: dict[str, str] | None = None,
    stored: bool = False,  # read back from a registry that predates the refusal of secrets
    **extra: Any,
) -> EnvironmentDefinition:
    return validate_definition(
        {
            "name": "demo",
            "python": {
                "version": python,
                "conda": {"packages": conda or []},
                "pip": {"packages": ["numpy==1.26.4", "requests==2.32.3"] if pip is None else pip},
            },
            "docker": {"base_image": image},
            "environment_variables": variables or {},
            **extra,
        },
        stored=stored,
    )


def test_identical_definitions_are_the_same_definition_and_build() -> None:
    result = diff(definition(), definition())

    assert result.same_definition and result.same_build
    assert result.changes == {}
    assert not result.order_only
    assert describe(result) == ["same build"]


def test_name_description_and_tags_are_no_change() -> None:
    other = definition(description="renamed", tags={"team": "ml"})
    other.name = "other"

    assert diff(definition(), other).same_definition


def test_pip_packages_added_removed_and_changed_by_normalized_name() -> None:
    old = definition(pip=["NumPy==1.26.4", "requests==2.32.3", "six==1.16.0"])
    new = definition(pip=["numpy==2.0.0", "requests==2.32.3", "Flask==3.0.3"])

    result = diff(old, new)

    assert result.changes["python.pip.packages"] == {
        "added": ["Flask==3.0.3"],
        "removed": ["six==1.16.0"],
        "changed": [{"from": "NumPy==1.26.4", "to": "numpy==2.0.0"}],
        "reordered": False,
    }
    assert not result.same_build
    assert describe(result) == [
        "python.pip.packages: + Flask==3.0.3",
        "python.pip.packages: - six==1.16.0",
        "python.pip.packages: NumPy==1.26.4 -> numpy==2.0.0",
        "different build",
    ]


def test_another_spelling_of_the_same_requirement_is_no_change() -> None:
    old = definition(pip=["NumPy==1.26.4", "Scikit_Learn>=1.4"])
    new = definition(pip=["numpy==1.26.4", "scikit-learn>=1.4"])

    result = diff(old, new)

    assert result.same_build and result.same_definition
    assert result.changes == {}


def test_a_package_listed_twice_is_diffed_occurrence_by_occurrence() -> None:
    result = diff(definition(pip=["six==1.15.0", "six==1.16.0"]), definition(pip=["six==1.16.0"]))

    assert result.changes["python.pip.packages"]["changed"] == [
        {"from": "six==1.15.0", "to": "six==1.16.0"}
    ]
    assert result.changes["python.pip.packages"]["removed"] == ["six==1.16.0"]


def test_conda_packages_by_name_and_python_version() -> None:
    old = definition(conda=["numpy=1.26", "conda-forge::scipy=1.13"], python="3.10")
    new = definition(conda=["numpy=1.25", "mkl=2024.0"], python="3.11")

    result = diff(old, new)

    assert result.changes["python.conda.packages"] == {
        "added": ["mkl=2024.0"],
        "removed": ["conda-forge::scipy=1.13"],
        "changed": [{"from": "numpy=1.26", "to": "numpy=1.25"}],
        "reordered": False,
    }
    assert result.changes["python.version"] == {"from": "3.10", "to": "3.11"}
    assert "python.version: 3.10 -> 3.11" in describe(result)


def test_base_image_change() -> None:
    result = diff(definition(image="python:3.11-slim"), definition(image="python:3.11-bookworm"))

    assert result.changes == {
        "docker.base_image": {"from": "python:3.11-slim", "to": "python:3.11-bookworm"}
    }
    assert not result.same_build
    assert describe(result) == [
        "docker.base_image: python:3.11-slim -> python:3.11-bookworm",
        "different build",
    ]


def test_container_run_settings_change_the_definition_not_the_build() -> None:
    before = definition(asset_id="azureml://a")
    after = definition(asset_id="azureml://b")
    after.docker.shm_size, after.docker.arguments = "8g", ["--gpus", "all"]
    result = diff(before, after)

    assert result.changes == {
        "docker_run": {"from": None, "to": {"shm_size": "8g", "arguments": ["--gpus", "all"]}}
    }
    assert result.same_build and not result.same_definition
    assert diff(before, definition(asset_id="azureml://c")).same_definition  # asset_id: no change


def test_a_registry_change_is_shown() -> None:
    old = definition(docker={"base_image": "reg.example/py:1"})
    new = definition(
        docker={
            "base_image": "reg.example/py:1",
            "base_image_registry": {"address": "reg.example", "password": "${REG_PASSWORD}"},
        }
    )

    result = diff(old, new)

    assert result.changes == {
        "docker.base_image_registry": {
            "from": None,
            "to": {"address": "reg.example", "password": "${REG_PASSWORD}"},
        }
    }
    assert not result.same_build  # the registry address is part of the build


def test_env_var_changes_keep_the_build_and_redact_secret_looking_names() -> None:
    old = definition(variables={"MODE": "fast", "API_TOKEN": "old-token", "GONE": "x"}, stored=True)
    new = definition(
        variables={"MODE": "slow", "API_TOKEN": "new-token", "ADDED": "1"}, stored=True
    )

    result = diff(old, new)

    assert result.same_build and not result.same_definition
    assert result.changes == {
        "environment_variables": {
            "ADDED": {"from": None, "to": "1"},
            "API_TOKEN": {"from": "<redacted>", "to": "<redacted>"},
            "GONE": {"from": "x", "to": None},
            "MODE": {"from": "fast", "to": "slow"},
        }
    }
    lines = describe(result)
    assert lines == [
        "env added: ADDED = 1",
        "env changed: API_TOKEN: <redacted> -> <redacted>",
        "env removed: GONE (was x)",
        "env changed: MODE: fast -> slow",  # the old value too: it is not a secret
        "same build",
    ]
    assert not any("token" in line for line in lines)


def test_a_new_secret_is_redacted_too() -> None:
    result = diff(definition(), definition(variables={"DB_PASSWORD": "hunter2"}, stored=True))

    assert result.changes["environment_variables"] == {
        "DB_PASSWORD": {"from": None, "to": "<redacted>"}
    }
    assert "hunter2" not in str(result.as_dict()) + "".join(describe(result))


def test_the_same_packages_in_another_order_is_order_only() -> None:
    old = definition(pip=["numpy==1.26.4", "requests==2.32.3"], conda=["mkl=2024.0", "tbb=2021"])
    new = definition(pip=["requests==2.32.3", "numpy==1.26.4"], conda=["tbb=2021", "mkl=2024.0"])

    result = diff(old, new)

    assert result.order_only
    assert not result.same_build and not result.same_definition
    assert result.changes["python.pip.packages"] == {
        "added": [],
        "removed": [],
        "changed": [],
        "reordered": True,
    }
    assert describe(result) == [
        "python.conda.packages: order changed (same items)",
        "python.pip.packages: order changed (same items)",
        "only the order differs: a new build hash, the same packages",
        "different build",
    ]


def test_a_reorder_with_a_version_change_is_not_order_only() -> None:
    old = definition(pip=["numpy==1.26.4", "requests==2.32.3"])
    new = definition(pip=["requests==2.32.3", "numpy==2.0.0"])

    result = diff(old, new)

    assert not result.order_only
    assert result.changes["python.pip.packages"]["reordered"]
    assert result.as_dict()["order_only"] is False


def test_a_local_wheel_whose_content_changed_is_a_change(tmp_path: Path) -> None:
    wheel = tmp_path / "wheels" / "demo-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"first build")
    entry = "./wheels/demo-1.0-py3-none-any.whl"
    old = resolve_local_inputs(definition(pip=[entry]), tmp_path)
    wheel.write_bytes(b"second build")
    new = resolve_local_inputs(definition(pip=[entry]), tmp_path)

    result = diff(old, new)

    assert not result.same_build
    (change,) = result.changes["python.pip.packages"]["changed"]
    old_digest = old.python.pip.file_digests[entry]
    new_digest = new.python.pip.file_digests[entry]
    assert change == {
        "from": f"{entry} (sha256 {old_digest[:12]})",
        "to": f"{entry} (sha256 {new_digest[:12]})",
    }


def test_dockerfile_changes_are_described_as_content() -> None:
    old = definition(image=None, docker={"dockerfile": "FROM python:3.11\n"})
    new = definition(image=None, docker={"dockerfile": "FROM python:3.12\n"})
    same = definition(image=None, docker={"dockerfile": "FROM python:3.11   \r\n"})

    assert describe(diff(old, new)) == ["docker.dockerfile: content changed", "different build"]
    assert diff(old, same).same_build  # line ends and trailing spaces do not count


def test_a_bare_pip_beside_pip_packages_is_implied_and_no_change() -> None:
    old = definition(conda=["numpy=1.26.4"])
    new = definition(conda=["numpy=1.26.4", "pip"])

    result = diff(old, new)

    assert result.same_build and result.same_definition
    assert result.changes == {}
