"""``save_to_directory`` writes what azureml-core writes (file names and keys, compared with the
real SDK when marked ``azureml``); azureml-core's section objects are accepted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kiln.errors import InvalidDefinition, InvalidRequest
from kiln.sdk.environment import Environment, SparkPackage
from kilntesting.cli import cached_venv, run_or_fail

AZUREML_CORE = "azureml-core==1.61.0.post4"
DOCKERFILE = "FROM registry.example/python:3.11\nRUN echo hi\n"
# The same environments, made with the real azureml-core.
AZURE_SAVES = """
import sys
from azureml.core import Environment
plain = Environment("plain")
plain.python.conda_dependencies.add_pip_package("six==1.16.0")
plain.save_to_directory(sys.argv[1] + "/plain")
docker = Environment.from_dockerfile("docker", sys.argv[2])
docker.save_to_directory(sys.argv[1] + "/docker")
"""


def kiln_saves(out: Path) -> None:
    plain = Environment("plain")
    plain.python.conda_dependencies.add_pip_package("six==1.16.0")
    plain.save_to_directory(out / "plain")
    Environment.from_dockerfile("docker", DOCKERFILE).save_to_directory(out / "docker")


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path in ``value``; a user's own keys (environment variables) are not shape."""
    if not isinstance(value, dict):
        return set()
    paths = set()
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        paths.add(path)
        if key != "environmentVariables":
            paths |= key_paths(item, path)
    return paths


def test_the_default_format_is_azure_ml_v1(tmp_path: Path) -> None:
    kiln_saves(tmp_path)

    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
        "azureml_environment.json",
        "conda_dependencies.yml",
    ]
    conda = yaml.safe_load((tmp_path / "plain" / "conda_dependencies.yml").read_text())
    assert conda["channels"] == ["anaconda", "conda-forge"]
    assert "python=3.11" in conda["dependencies"]
    # With its last newline, as azureml-core writes it.
    assert (tmp_path / "docker" / "BaseDockerfile").read_text() == DOCKERFILE
    assert Environment.load_from_directory(tmp_path / "plain").definition.python.pip.packages == [
        "six==1.16.0"
    ]


def test_kilns_earlier_argument_order_still_works(tmp_path: Path) -> None:
    env = Environment("ordered")
    env.save_to_directory(tmp_path, "kiln")
    env.environment_variables = {"MODE": "slow"}

    env.save_to_directory(tmp_path, "kiln", True)

    assert [p.name for p in tmp_path.iterdir()] == ["kiln.yaml"]
    assert Environment.load_from_directory(tmp_path).environment_variables == {"MODE": "slow"}
    with pytest.raises(InvalidRequest, match="`format`: 1 is not a format"):
        env.save_to_directory(tmp_path, True, 1)  # type: ignore[arg-type]


def test_spark_packages_made_as_in_azure_ml_are_stored() -> None:
    env = Environment("spark")
    package = SparkPackage()
    package.group, package.artifact, package.version = "com.example", "lib", "1.0"

    env.spark.packages = [package, SparkPackage("org.example", "other", "2.0")]

    stored = [(p.group, p.artifact, p.version) for p in env.definition.spark.packages]
    assert stored == [("com.example", "lib", "1.0"), ("org.example", "other", "2.0")]
    with pytest.raises(InvalidDefinition, match=r"`spark\.packages\[0\]\.artifact`"):
        env.spark.packages = [SparkPackage("com.example")]
    assert len(env.definition.spark.packages) == 2


@pytest.mark.azureml
def test_files_and_keys_match_what_azureml_core_writes(tmp_path: Path) -> None:
    python = cached_venv(AZUREML_CORE, "azureml.core")
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    script = [str(python), "-c", AZURE_SAVES, str(tmp_path / "azure"), str(tmp_path / "Dockerfile")]
    run_or_fail(script)
    kiln_saves(tmp_path / "kiln")

    azure, kiln = tmp_path / "azure", tmp_path / "kiln"
    assert sorted(p.name for p in (kiln / "plain").iterdir()) == sorted(
        p.name for p in (azure / "plain").iterdir()
    )
    # azureml-core's from_dockerfile without a conda file still writes its default conda file
    # (for a user-managed environment); Kiln writes none: the image's Python is used as it is.
    assert sorted(p.name for p in (kiln / "docker").iterdir()) == [
        "BaseDockerfile",
        "azureml_environment.json",
    ]
    for name in ("plain", "docker"):
        keys = key_paths(json.loads((kiln / name / "azureml_environment.json").read_text()))
        azure_keys = key_paths(json.loads((azure / name / "azureml_environment.json").read_text()))
        # An unset platform is written as null, where azureml-core writes its Linux/amd64.
        assert keys == azure_keys - {"docker.platform.os", "docker.platform.architecture"}
    conda = yaml.safe_load((kiln / "plain" / "conda_dependencies.yml").read_text())
    azure_conda = yaml.safe_load((azure / "plain" / "conda_dependencies.yml").read_text())
    assert (sorted(conda), conda["channels"]) == (sorted(azure_conda), azure_conda["channels"])


def test_an_azure_v2_save_from_the_sdk_names_an_image_and_warns_as_the_cli_does(
    tmp_path: Path,
) -> None:
    env = Environment("noimage")
    env.python.conda_dependencies.add_pip_package("six==1.16.0")
    with pytest.warns(UserWarning, match="names no base image and Azure ML v2 requires one"):
        env.save_to_directory(tmp_path / "v2", format="azure-v2")
    saved = yaml.safe_load((tmp_path / "v2" / "environment.yaml").read_text())
    assert saved["image"].startswith("mcr.microsoft.com/azureml/")
