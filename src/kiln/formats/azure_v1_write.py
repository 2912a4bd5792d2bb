"""Writing Azure ML SDK v1 environment folders (see azure_v1.py for the format and Kiln's
rules): ``azureml_environment.json`` as azureml-core writes it, the conda file, the Dockerfile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kiln.environment.definition import EnvironmentDefinition, RegistryRef, has_conda_file_content
from kiln.errors import InvalidDefinition
from kiln.formats import base
from kiln.formats.conda_env import python_to_spec

FORMAT = "azure-v1"
DEFINITION_FILE = "azureml_environment.json"
CONDA_FILE = "conda_dependencies.yml"
DOCKERFILE = "BaseDockerfile"
CONDA_NAME = "project_environment"  # the name azureml-core gives every conda file
SDK_INTERPRETER = "python"
SDK_SHM_SIZE = "2g"  # azureml-core's _DEFAULT_SHM_SIZE
_DATABRICKS = ("mavenLibraries", "pypiLibraries", "rcranLibraries", "jarLibraries", "eggLibraries")


def _check_expressible(definition: EnvironmentDefinition) -> None:
    if definition.docker.context_folder:
        raise InvalidDefinition(
            "`docker.build_context` cannot be written to Azure ML v1, whose build context is a "
            "remote git or storage location; use `--format azure-v2` or `--format kiln`"
        )
    if definition.python.pip.constraints:
        raise InvalidDefinition(
            "`python.pip.constraints` cannot be written to Azure ML v1, whose conda file has no "
            "constraints; pin them in `python.pip.packages` or use `--format kiln`"
        )
    if definition.python.check_imports:
        raise InvalidDefinition(
            "`python.check_imports` cannot be written to Azure ML v1, which has no such setting; "
            "remove it or use `--format kiln`"
        )


def dropped_fields(definition: EnvironmentDefinition) -> list[str]:
    """Fields an azureml-core environment has no place for, so a save would lose them."""
    checks = {
        "description": definition.description is not None,
        "tags": bool(definition.tags),
        "inference_config": definition.inference_config is not None,
        # Azure fetches a git context's ref when it builds: the file names no commit.
        "docker.build_context_commit": definition.docker.build_context_commit is not None,
    }
    return [name for name, lost in checks.items() if lost]


def render_json(definition: EnvironmentDefinition) -> str:
    """``azureml_environment.json`` as azureml-core 1.61 writes it: same keys, order, defaults."""
    python, docker, spark = definition.python, definition.docker, definition.spark
    registry, platform = docker.base_image_registry, docker.platform
    docker_json: dict[str, Any] = {"enabled": docker.enabled, "baseImage": docker.base_image}
    if not docker.dockerfile:  # save_to_directory drops the key when the Dockerfile is a file
        docker_json["baseDockerfile"] = None
    git = docker.git_context
    docker_json |= {
        "buildContext": {
            "locationType": "git",
            "location": docker.build_context,
            "dockerfilePath": docker.dockerfile_path or "Dockerfile",
        }
        if git
        else None,
        "sharedVolumes": True,
        "shmSize": docker.shm_size or SDK_SHM_SIZE,
        "arguments": list(docker.arguments),
        # address, username, password: the password is only ever a ${VAR} reference.
        "baseImageRegistry": {**(registry or RegistryRef()).model_dump(), "registryIdentity": None},
        "platform": {"os": platform.os.capitalize(), "architecture": platform.architecture}
        if platform
        else None,
    }
    interpreter = python.interpreter_path if python.user_managed else None
    data: dict[str, Any] = {
        "name": definition.name,
        "version": definition.version,
        "environmentVariables": dict(definition.environment_variables),
        "python": {
            "userManagedDependencies": python.user_managed,
            "interpreterPath": interpreter or SDK_INTERPRETER,
            "condaDependenciesFile": None,
            "baseCondaEnvironment": None,
        },
        "docker": docker_json,
        "spark": {
            "repositories": list(spark.repositories),
            "packages": [p.model_dump() for p in spark.packages],
            "precachePackages": spark.precache_packages,
        },
        "databricks": {key: [] for key in _DATABRICKS},
        "r": None,
        "inferencingStackVersion": definition.inferencing_stack_version,
        "assetId": definition.asset_id,
    }
    return json.dumps(data, indent=4)


def save(definition: EnvironmentDefinition, path: Path) -> list[Path]:
    """Write the folder ``path`` so that azureml-core's ``load_from_directory`` reads it."""
    _check_expressible(definition)
    files = {DEFINITION_FILE: render_json(definition).encode()}
    if has_conda_file_content(definition.python):
        files[CONDA_FILE] = base.dump_yaml(python_to_spec(definition, name=CONDA_NAME)).encode()
    if definition.docker.dockerfile:
        # The model strips the text; a file ends with a line break, as the SDK's own do.
        files[DOCKERFILE] = f"{definition.docker.dockerfile}\n".encode()
    # Files an earlier save left here are removed by dispatch.save_definition (with overwrite).
    return base.write_files_atomically(path, files)
