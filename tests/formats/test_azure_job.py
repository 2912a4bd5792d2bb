"""A command job YAML's inline environment (Azure's anonymous environment) reads as the v2
environment it holds, named after the job file, with the job's environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.errors import InvalidDefinition
from kiln.formats import azure_v2
from kiln.formats.dispatch import detect_file, load_path

IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
JOB = f"""\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: python train.py --epochs ${{{{inputs.epochs}}}}
code: src
inputs:
  epochs: 3
environment:
  image: {IMAGE}
  conda_file: envs/conda.yaml
environment_variables:
  OMP_NUM_THREADS: 2
compute: azureml:cpu-cluster
"""
CONDA = "dependencies:\n  - python=3.11\n  - pip\n  - pip: [scikit-learn==1.4.2]\n"


def write_job(folder: Path, text: str = JOB) -> Path:
    (folder / "envs").mkdir(parents=True, exist_ok=True)
    (folder / "envs" / "conda.yaml").write_text(CONDA)
    (folder / "train-job.yml").write_text(text)
    return folder / "train-job.yml"


def test_the_inline_environment_is_read_with_the_jobs_variables(tmp_path: Path) -> None:
    job = write_job(tmp_path)
    assert detect_file(job) == "azure-v2"
    definition = load_path(job).definition
    assert definition.name == "train-job"
    assert definition.docker.base_image == IMAGE
    assert definition.python.version == "3.11"
    assert definition.python.pip.packages == ["scikit-learn==1.4.2"]
    assert definition.environment_variables == {"OMP_NUM_THREADS": "2"}


def test_a_job_without_a_schema_is_known_by_its_command(tmp_path: Path) -> None:
    text = JOB.split("\n", 1)[1].replace("conda_file: envs/conda.yaml", "name: trainer")
    definition = load_path(write_job(tmp_path, text)).definition
    assert (definition.name, definition.docker.base_image) == ("trainer", IMAGE)


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (
            "environment: azureml:sklearn-env:3",
            "`environment` in {job} names the registered environment 'azureml:sklearn-env:3'; "
            "run with --env sklearn-env:3 instead of --env-file",
        ),
        (
            "environment: azureml:sklearn-env@latest",
            "`environment` in {job} names the registered environment "
            "'azureml:sklearn-env@latest'; run with --env sklearn-env instead of --env-file",
        ),
        (
            "environment: [x]",
            "`environment` in {job} must be an inline environment (image with conda_file, or "
            "build); add one, or run with --env NAME:VERSION",
        ),
        (
            f"environment:\n  image: {IMAGE}\n  variables: {{A: b}}",
            "unknown key `variables` in {job} environment; valid keys: $schema, build, "
            "conda_file, datastore, description, image, inference_config, name, os_type, tags, "
            "version",
        ),
    ],
)
def test_what_cannot_be_read_is_one_line(environment: str, expected: str, tmp_path: Path) -> None:
    job = write_job(tmp_path, f"command: python train.py\n{environment}\n")
    with pytest.raises(InvalidDefinition) as caught:
        azure_v2.load(job)
    assert str(caught.value) == expected.format(job=job)
