"""Azure ML v2 environment YAML (``az ml environment create --file``).

Keys: ``$schema``, ``name``, ``version``, ``description``, ``tags``, ``image``, ``conda_file``
(a path next to the YAML, or an inline mapping), ``build{path, dockerfile_path}``, ``os_type``,
``inference_config``, ``datastore``. Any other key is an error naming it, as in Azure. As in Azure, a conda
file goes with ``image`` only, never with ``build``, and an ``inference_config`` names all three
routes (liveness, readiness, scoring): one without them is refused on reading, and a definition
holding fewer (Kiln YAML allows it) is refused on saving rather than written as a file Azure
rejects. Azure requires an image or a build: ``complete`` gives a definition without either the
workspace's default base image, else ``DEFAULT_IMAGE`` (Azure ML's own default CPU image), with
a warning saying so.

v2 has no place for environment variables, user-managed interpreters, spark packages, the
inferencing stack version, a registry reference or the CPU architecture: ``dropped_fields``
names what a save leaves out. Dockerfile text is written as a build context folder. ``datastore``
(the Azure datastore the build files are uploaded to) is accepted, as in Azure, and ignored
with a warning: Kiln keeps those files in its workspace's artifact store, so the name means
nothing here and is not written back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiln.environment.definition import EnvironmentDefinition, has_conda_file_content
from kiln.environment.files import read_text_limited, resolve_inside
from kiln.environment.validation import validate_definition
from kiln.errors import InvalidDefinition
from kiln.formats import azure_job, conda_env
from kiln.formats.base import (
    Loaded,
    dump_yaml,
    known_keys,
    parse_yaml,
    read_mapping,
    resolve_local_inputs,
    write_files_atomically,
)

FORMAT = "azure-v2"
DEFAULT_FILE = "environment.yaml"
CONDA_FILE = "conda.yaml"
DOCKERFILE_CONTEXT = "docker-context"
SCHEMA = "https://azuremlschemas.azureedge.net/latest/environment.schema.json"
_KEYS = {
    "$schema",
    "name",
    "version",
    "description",
    "tags",
    "image",
    "conda_file",
    "build",
    "os_type",
    "inference_config",
    "datastore",
}
ROUTES = ("liveness_route", "readiness_route", "scoring_route")
# The image a v2 file names when the definition has none: Azure requires an image or a build.
# It is azureml-core 1.61's DEFAULT_CPU_IMAGE, what Azure ML itself gives such an environment.
DEFAULT_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20251130.v1"


def check_routes(config: Any, source: str) -> None:
    """Azure ML rejects an ``inference_config`` without all three routes: so does Kiln, on
    reading and on writing one back."""
    if config is None:
        return
    if not isinstance(config, dict):
        raise InvalidDefinition(
            f"`inference_config` in {source} must be a mapping of {', '.join(ROUTES)}"
        )
    known_keys(config, set(ROUTES), where="inference_config.", source=source)
    for route in ROUTES:
        if config.get(route) is None:
            raise InvalidDefinition(
                f"`inference_config.{route}` is missing in {source}; Azure ML requires all of "
                f"{', '.join(ROUTES)}: add it (path and port), e.g. {route}: "
                "{path: /, port: 5001}"
            )


def _conda_spec(value: Any, base: Path, source: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise InvalidDefinition(f"`conda_file` in {source} must be a file path or a mapping")
    path = resolve_inside(base, value, field="conda_file")
    data = parse_yaml(read_text_limited(path, field="conda_file"), source=str(path))
    if not isinstance(data, dict):
        raise InvalidDefinition(f"`conda_file` {path} must hold a mapping")
    return data


def _docker(data: dict[str, Any], source: str) -> dict[str, Any]:
    build = data.get("build")
    if build is None:
        return {"base_image": data.get("image")}
    if not isinstance(build, dict):
        raise InvalidDefinition(f"`build` in {source} must be a mapping with `path`")
    known_keys(build, {"path", "dockerfile_path"}, where="build.", source=source)
    if data.get("image"):
        raise InvalidDefinition(f"`image` and `build` are both set in {source}; keep one of them")
    if data.get("conda_file"):
        raise InvalidDefinition(
            f"`conda_file` goes with `image`, not `build`, in {source}; install packages in the "
            "Dockerfile or use image + conda_file"
        )
    if not build.get("path"):
        raise InvalidDefinition(f"`build.path` is required in {source}")
    return {"build_context": str(build["path"]), "dockerfile_path": build.get("dockerfile_path")}


def load(path: Path) -> Loaded:
    """An environment YAML, or a command job YAML's inline environment (see azure_job)."""
    data = read_mapping(path)
    source = str(path)
    job_variables: dict[str, str] = {}
    if azure_job.is_job(data):
        data, job_variables = azure_job.environment_of(data, path)
        source = f"{source} environment"
    known_keys(data, _KEYS, where="", source=source)
    docker = _docker(data, source)  # before reading conda_file: a conflict is the better error
    python: dict[str, Any] = {}
    variables: dict[str, str] = {}
    warnings: list[str] = []
    if data.get("conda_file") is not None:
        section, variables, warnings = conda_env.spec_to_python(
            _conda_spec(data["conda_file"], path.parent, source), source=f"{source} conda_file"
        )
        python = section.model_dump()
    if data.get("datastore") is not None:
        warnings.append(
            f"`datastore` in {source} names where Azure ML uploads the build files; Kiln keeps "
            "them in its workspace's artifact store, so it is ignored (and not written back)"
        )
    if data.get("os_type") is not None:
        docker["platform"] = {"os": data["os_type"]}
    tags = data.get("tags") or {}
    if not isinstance(tags, dict):
        raise InvalidDefinition(f"`tags` in {source} must be a mapping of names to values")
    version = data.get("version")
    if isinstance(version, (float, bool)):
        # YAML reads 1.10 as the number 1.1: the version the user wrote is already lost.
        raise InvalidDefinition(
            f'`version` in {source} must be a string; quote it, e.g. version: "{version}"'
        )
    check_routes(data.get("inference_config"), source)
    fields: dict[str, Any] = {
        "name": data.get("name"),
        "version": None if version is None else str(version),
        "description": data.get("description"),
        "tags": {str(k): str(v) for k, v in tags.items()},
        "python": python,
        "environment_variables": {**variables, **job_variables},
        "docker": docker,
        "inference_config": data.get("inference_config"),
    }
    present = {k: v for k, v in fields.items() if v is not None}  # absent name: "is required"
    definition = validate_definition(present, source=source)
    return Loaded(resolve_local_inputs(definition, path.parent), tuple(warnings), (path,))


def dropped_fields(definition: EnvironmentDefinition) -> list[str]:
    """Fields a v2 file cannot hold, so a save would silently lose them."""
    python = definition.python
    checks = {
        "environment_variables": bool(definition.environment_variables),
        "python.user_managed": python.user_managed,
        "python.interpreter_path": python.interpreter_path is not None,
        "python.pip.constraints": bool(python.pip.constraints),
        "python.check_imports": bool(python.check_imports),
        "spark": bool(definition.spark.packages or definition.spark.repositories),
        "inferencing_stack_version": definition.inferencing_stack_version is not None,
        "docker.base_image_registry": definition.docker.base_image_registry is not None,
        # Azure fetches a git context's ref when it builds: the file names no commit.
        "docker.build_context_commit": definition.docker.build_context_commit is not None,
        "docker.platform.architecture": bool(
            definition.docker.platform and definition.docker.platform.architecture != "amd64"
        ),
        # Azure ML v1's run settings; a v2 job sets its own (shm_size in the job YAML).
        "docker.enabled": definition.docker.enabled,
        "docker.shm_size": definition.docker.shm_size is not None,
        "docker.arguments": bool(definition.docker.arguments),
        "asset_id": definition.asset_id is not None,
    }
    return [name for name, lost in checks.items() if lost]


def complete(
    definition: EnvironmentDefinition, default_image: str | None
) -> tuple[EnvironmentDefinition, list[str]]:
    """The definition a v2 file can hold, and what was added to it. Azure refuses a file with
    neither ``image`` nor ``build`` ("Docker image or Dockerfile is required"): one without
    either names ``default_image`` (the workspace's default base image), else DEFAULT_IMAGE."""
    docker = definition.docker
    if docker.base_image or docker.dockerfile or docker.build_context:
        return definition, []
    image = default_image or DEFAULT_IMAGE
    whose = (
        "the workspace's default base image" if default_image else "Azure ML's default CPU image"
    )
    note = (
        f"{definition.reference} names no base image and Azure ML v2 requires one: the file names "
        f"`image: {image}`, {whose}; set docker.base_image to choose another"
    )
    completed = docker.model_copy(update={"base_image": image})
    return definition.model_copy(update={"docker": completed}), [note]


def render(definition: EnvironmentDefinition) -> dict[str, bytes]:
    """File name -> content for the YAML and what it refers to."""
    docker = definition.docker
    data: dict[str, Any] = {"$schema": SCHEMA, "name": definition.name}
    if definition.version:
        data["version"] = definition.version
    if definition.description is not None:
        data["description"] = definition.description
    if definition.tags:
        data["tags"] = dict(definition.tags)
    files: dict[str, bytes] = {}
    if docker.dockerfile is not None:
        data["build"] = {"path": DOCKERFILE_CONTEXT}
        files[f"{DOCKERFILE_CONTEXT}/Dockerfile"] = docker.dockerfile.encode()
    elif docker.build_context:
        data["build"] = {"path": docker.build_context}
        if docker.dockerfile_path:
            data["build"]["dockerfile_path"] = docker.dockerfile_path
    elif docker.base_image:
        data["image"] = docker.base_image
    if has_conda_file_content(definition.python):
        if "build" in data:
            raise InvalidDefinition(
                "Azure ML v2 cannot combine a Dockerfile build with conda/pip packages; "
                "save with --format kiln or azure-v1, or install the packages in the Dockerfile"
            )
        data["conda_file"] = CONDA_FILE
        files[CONDA_FILE] = dump_yaml(conda_env.python_to_spec(definition)).encode()
    if docker.platform is not None:
        data["os_type"] = docker.platform.os
    if definition.inference_config is not None:
        routes = definition.inference_config.model_dump(exclude_none=True)
        check_routes(routes, f"the definition of {definition.reference}")
        data["inference_config"] = routes
    files[DEFAULT_FILE] = dump_yaml(data).encode()
    return files


def save(definition: EnvironmentDefinition, path: Path) -> list[Path]:
    return write_files_atomically(path, render(definition))
