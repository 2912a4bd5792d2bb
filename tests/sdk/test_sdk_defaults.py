"""What a new SDK environment starts from: azureml-core's defaults as Kiln has them."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from kiln import CondaDependencies, Environment
from kiln.errors import InvalidRequest
from kiln.sdk import defaults
from kiln.sdk.defaults import DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE, PYTHON_DEFAULT_VERSION


def test_environment_and_conda_dependencies_start_from_the_same_defaults() -> None:
    env = Environment("fresh")
    deps = CondaDependencies()

    for python in (env.definition.python, deps._section):
        assert python.version == PYTHON_DEFAULT_VERSION == "3.11"
        assert python.conda.channels == ["anaconda", "conda-forge"]
        assert (python.conda.packages, python.pip.packages) == ([], [])
    # A base image in a Kiln definition means an image build: a new environment names none.
    assert env.docker.base_image is None


def test_create_keeps_the_defaults_it_is_not_given() -> None:
    deps = CondaDependencies.create(pip_packages=["six==1.16.0"])

    assert deps.get_python_version() == PYTHON_DEFAULT_VERSION
    assert deps.conda_channels == ["anaconda", "conda-forge"]
    assert CondaDependencies.create(python_version="3.12").get_python_version() == "3.12"


def test_fields_set_explicitly_replace_the_defaults() -> None:
    env = Environment("explicit")
    env.python.conda_dependencies = CondaDependencies.create(python_version="3.12")
    env.python.conda_dependencies.remove_channel("anaconda")
    env.docker.base_image = DEFAULT_GPU_IMAGE

    definition = env.definition
    assert definition.python.version == "3.12"
    assert definition.python.conda.channels == ["conda-forge"]
    assert definition.docker.base_image == DEFAULT_GPU_IMAGE


def test_the_default_images_are_kilns_where_azure_ml_code_imports_them() -> None:
    from kiln.sdk import environment

    assert (environment.DEFAULT_CPU_IMAGE, environment.DEFAULT_GPU_IMAGE) == (
        defaults.DEFAULT_CPU_IMAGE,
        defaults.DEFAULT_GPU_IMAGE,
    )
    assert "python:3.11" in DEFAULT_CPU_IMAGE and "mcr.microsoft.com" not in DEFAULT_CPU_IMAGE
    assert "cuda" in DEFAULT_GPU_IMAGE


def test_image_constructors_without_a_conda_file_use_the_images_python(tmp_path: Path) -> None:
    """The image's own Python is used: a default version could contradict it."""
    image = Environment.from_docker_image("img", "registry.example/python:3.12")
    dockerfile = Environment.from_dockerfile("df", "FROM registry.example/python:3.12\n")

    for env in (image, dockerfile):
        assert env.definition.python.version is None
        assert env.definition.python.conda.channels == []


def write_conda(folder: Path, dependencies: str) -> Path:
    path = folder / "environment.yml"
    path.write_text(f"name: from-file\ndependencies:\n{dependencies}")
    return path


def test_a_conda_file_without_python_gets_the_default_with_a_warning(tmp_path: Path) -> None:
    path = write_conda(tmp_path, "  - numpy=1.26.4\n")

    with pytest.warns(UserWarning, match=r"No Python version provided in .*, defaulting to '3.11'"):
        env = Environment.from_conda_specification("conda", path)

    assert env.definition.python.version == PYTHON_DEFAULT_VERSION
    assert env.definition.python.conda.packages == ["numpy=1.26.4"]
    # As in azureml-core, the file's own channels (none here) are kept: no defaults added.
    assert env.definition.python.conda.channels == []


def test_a_conda_file_with_python_keeps_it_silently(tmp_path: Path) -> None:
    path = write_conda(tmp_path, "  - python=3.12\n  - numpy=1.26.4\n")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = Environment.from_conda_specification("conda", path)

    assert env.definition.python.version == "3.12"


def test_image_constructors_take_azure_ml_dependency_files(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    path = write_conda(tmp_path, "  - python=3.12\n")

    by_pip = Environment.from_docker_image(
        "img", "registry.example/python:3.11", pip_requirements=tmp_path / "requirements.txt"
    )
    by_conda = Environment.from_dockerfile("df", "FROM x\n", conda_specification=path)

    assert by_pip.definition.python.pip.packages == ["six==1.16.0"]
    assert by_pip.definition.docker.base_image == "registry.example/python:3.11"
    assert by_conda.definition.python.version == "3.12"
    with pytest.raises(InvalidRequest, match="pass conda_specification or pip_requirements"):
        Environment.from_docker_image(
            "img", "x", conda_specification=path, pip_requirements=tmp_path / "requirements.txt"
        )
