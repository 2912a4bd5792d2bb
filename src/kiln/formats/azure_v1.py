"""Azure ML SDK v1 (azureml-core) environment folders, as ``Environment.save_to_directory``
writes them: ``azureml_environment.json`` plus ``conda_dependencies.yml`` and ``BaseDockerfile``.

Reading follows ``load_from_directory``: the files win over inline ``python.condaDependencies``
and ``docker.baseDockerfile``; unknown keys are ignored; a Dockerfile clears ``baseImage`` (with
a warning, as in the SDK). Where Kiln differs from the SDK, and why:
- booleans must be JSON booleans (the SDK's ``bool("false")`` is True); ``version`` may be a
  string or an integer and becomes a string;
- a plain-text ``baseImageRegistry.password`` is dropped with a warning that never shows it; a
  ``${VAR}`` reference is kept and written back as is (Azure ML does not expand it);
- a git ``docker.buildContext`` (``locationType: git``) is Kiln's git build context, both ways;
  a storage account one is an error on reading (Kiln cannot fetch it), and writing a local
  folder ``docker.build_context`` or ``python.pip.constraints`` is an error, since v1 cannot
  say it;
- ``interpreterPath`` counts only with ``userManagedDependencies``, and the SDK default
  ``python`` means no path; conda ``variables`` join ``environmentVariables`` (which win);
- ``platform: null`` and no platform map to each other, apart from an explicit Linux/amd64;
- the run settings ``enabled``, ``shmSize`` and ``arguments`` are kept (``docker.enabled``,
  ``docker.shm_size``, ``docker.arguments``: in the definition digest, never the build hash;
  the SDK defaults false, "2g" and [] are stored as absent) and ``assetId`` too (``asset_id``,
  in no digest); ``sharedVolumes: false`` is dropped with a warning;
- ``r``, ``databricks``, ``registryIdentity``, ``baseCondaEnvironment`` and
  ``condaDependenciesFile`` are dropped, with a warning when set. Writing emits the SDK's
  defaults for them; ``description``, ``tags`` and ``inference_config`` have no place in v1:
  ``dropped_fields`` names them, so a save says it leaves them out;
- a JSON holding only ``name`` (and ``version``) is azureml-core's reference to a registered
  version: loading raises ``RegisteredReference``, which a caller with a workspace resolves;
- ``BaseDockerfile`` is written with a final line break (the model strips the text).
A conda file is written only for python content; without a python version the SDK loads it but
cannot save it again ("Python package is missing"). Local wheel paths are written as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.environment.files import read_text_limited
from kiln.environment.validation import validate_definition
from kiln.errors import InvalidDefinition
from kiln.formats import base
from kiln.formats.azure_v1_write import (
    CONDA_FILE,
    CONDA_NAME,
    DEFINITION_FILE,
    DOCKERFILE,
    FORMAT,
    SDK_INTERPRETER,
    SDK_SHM_SIZE,
    dropped_fields,
    render_json,
    save,
)
from kiln.formats.base import Loaded
from kiln.formats.conda_env import spec_to_python
from kiln.secrets import is_reference

__all__ = [
    "CONDA_FILE",
    "CONDA_NAME",
    "DEFINITION_FILE",
    "DOCKERFILE",
    "FORMAT",
    "SDK_INTERPRETER",
    "SDK_SHM_SIZE",
    "dropped_fields",
    "load",
    "render_json",
    "save",
]
_KINDS: dict[type, str] = {
    bool: "true or false (no quotes)",
    str: "a string",
    int: "an integer",
    list: "a list",
    dict: "a map",
}
# Settings with content Kiln cannot represent; dropped with a warning when set.
_WARN_IF_SET = (
    "r",
    "databricks",
    "python.baseCondaEnvironment",
    "python.condaDependenciesFile",
    "docker.baseImageRegistry.registryIdentity",
)
# Settings whose SDK default is true: dropped with a warning when false.
_WARN_IF_FALSE = ("docker.sharedVolumes",)


def _kind(value: Any) -> str:
    for kind, text in _KINDS.items():
        if isinstance(value, kind):
            return text
    return "a number" if isinstance(value, float) else type(value).__name__


@dataclass
class _Reader:
    """Type-checked access to the JSON, collecting warnings and the files read."""

    directory: Path
    source: str
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def get(self, data: dict[str, Any], where: str, *kinds: type) -> Any:
        """``data[key]`` (``where`` ends in the key) if one of ``kinds``, None if absent or null."""
        value = data.get(where.rsplit(".", 1)[-1])
        # bool is an int subclass in Python, but JSON true is never a number.
        wrong_bool = isinstance(value, bool) and bool not in kinds
        if value is None or (isinstance(value, kinds) and not wrong_bool):
            return value
        expected = " or ".join(_KINDS[k] for k in kinds)
        raise InvalidDefinition(
            f"`{where}` in {self.source} must be {expected}, not {_kind(value)}"
        )

    def section(self, data: dict[str, Any], where: str) -> dict[str, Any]:
        value: dict[str, Any] | None = self.get(data, where, dict)
        return value or {}

    def text(self, data: dict[str, Any], where: str) -> str | None:
        """A string field, with "" read as absent."""
        return self.get(data, where, str) or None


def _conda_spec(reader: _Reader, inline: dict[str, Any] | None) -> tuple[Any, str] | None:
    conda_path = reader.directory / CONDA_FILE
    if conda_path.is_file():  # the file wins, as in load_from_directory
        reader.files.append(conda_path)
        return base.read_mapping(conda_path), str(conda_path)
    if inline is not None:
        return inline, f"{reader.source} (python.condaDependencies)"
    return None


def _python(reader: _Reader, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(python fields, conda variables) from the JSON and the conda file."""
    section = reader.section(data, "python")
    user_managed = bool(reader.get(section, "python.userManagedDependencies", bool))
    interpreter = reader.text(section, "python.interpreterPath")
    found = _conda_spec(reader, reader.get(section, "python.condaDependencies", dict))
    python: dict[str, Any] = {}
    variables: dict[str, str] = {}
    if found is not None:
        model, variables, warnings = spec_to_python(found[0], source=found[1])
        python = model.model_dump()
        reader.warnings += warnings
    python["user_managed"] = user_managed
    # "python" is the SDK's default, written for every environment: it names no interpreter.
    use_path = user_managed and interpreter != SDK_INTERPRETER
    python["interpreter_path"] = interpreter if use_path else None
    return python, variables


def _registry(reader: _Reader, section: dict[str, Any]) -> dict[str, Any] | None:
    where = "docker.baseImageRegistry"
    address = reader.text(section, f"{where}.address")
    username = reader.text(section, f"{where}.username")
    password = section.get("password") or None
    if password is not None and not (isinstance(password, str) and is_reference(password)):
        # Never echo the value: azureml-core wrote a secret in plain text.
        reader.warnings.append(
            f"`{where}.password` in {reader.source} is a plain-text password, which Kiln never "
            "stores, so it was dropped: put it in an environment variable and write "
            "`password: ${MY_REGISTRY_PASSWORD}` under `docker.base_image_registry` in Kiln YAML "
            "(and rotate it: it was in a file)"
        )
        password = None
    if not (address or username or password):
        return None
    return {"address": address, "username": username, "password": password}


def _dockerfile(reader: _Reader, section: dict[str, Any]) -> str | None:
    path = reader.directory / DOCKERFILE
    if not path.is_file():
        return reader.text(section, "docker.baseDockerfile")
    reader.files.append(path)  # the file wins, as in load_from_directory
    return read_text_limited(path, field="docker.baseDockerfile")


def _docker(reader: _Reader, data: dict[str, Any]) -> dict[str, Any]:
    section = reader.section(data, "docker")
    context = section.get("buildContext")
    git = {} if context is None else _git_build_context(reader, context)
    base_image = reader.text(section, "docker.baseImage")
    dockerfile = _dockerfile(reader, section)
    if base_image and dockerfile:
        base_image = None
        reader.warnings.append(
            f"`docker.baseImage` in {reader.source} is ignored because a Dockerfile is given, as "
            "azureml-core does; remove one of them"
        )
    registry = reader.section(section, "docker.baseImageRegistry")
    platform = reader.get(section, "docker.platform", dict)
    if platform is not None:
        platform = {k: v for k, v in platform.items() if k in ("os", "architecture") and v}
    return {
        "base_image": base_image,
        "dockerfile": dockerfile,
        "base_image_registry": _registry(reader, registry),
        "platform": platform,
        **git,
        **_run_settings(reader, section),
    }


def _git_build_context(reader: _Reader, context: Any) -> dict[str, Any]:
    """azureml-core's ``DockerBuildContext``: a git one is Kiln's git build context; a storage
    account one cannot be fetched by Kiln."""
    kind = context.get("locationType") if isinstance(context, dict) else None
    location = context.get("location") if isinstance(context, dict) else None
    if str(kind).lower() != "git" or not isinstance(location, str):
        # The location is not shown: storage URLs may carry tokens.
        raise InvalidDefinition(
            f"`docker.buildContext` in {reader.source} is a remote {kind or 'storage'} "
            "location and Kiln builds from a folder or a git URL: copy it into a folder and set "
            "`docker.build_context` in Kiln YAML, or `build.path` in Azure ML v2"
        )
    path = reader.text(context, "docker.buildContext.dockerfilePath")
    return {"build_context": location, "dockerfile_path": path}


def _run_settings(reader: _Reader, section: dict[str, Any]) -> dict[str, Any]:
    """How the SDK starts a run's container. The SDK's defaults are stored as absent, so a
    folder the SDK wrote with them has the same definition digest as before Kiln kept these."""
    arguments = reader.get(section, "docker.arguments", list) or []
    for index, argument in enumerate(arguments):
        if not isinstance(argument, str):
            raise InvalidDefinition(
                f"`docker.arguments[{index}]` in {reader.source} must be a string, not "
                f"{_kind(argument)}"
            )
    shm_size = reader.text(section, "docker.shmSize")
    return {
        "enabled": bool(reader.get(section, "docker.enabled", bool)),
        "shm_size": None if shm_size == SDK_SHM_SIZE else shm_size,
        "arguments": arguments,
    }


def _spark(reader: _Reader, data: dict[str, Any]) -> dict[str, Any]:
    section = reader.section(data, "spark")
    packages = reader.get(section, "spark.packages", list) or []
    precache = reader.get(section, "spark.precachePackages", bool)
    return {
        "repositories": reader.get(section, "spark.repositories", list) or [],
        # The SDK ignores unknown keys inside a package too.
        "packages": [
            {k: p.get(k) for k in ("group", "artifact", "version")} if isinstance(p, dict) else p
            for p in packages
        ],
        "precache_packages": True if precache is None else precache,
    }


def _variables(reader: _Reader, data: dict[str, Any]) -> dict[str, str]:
    variables = reader.get(data, "environmentVariables", dict) or {}
    for key, value in variables.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidDefinition(
                f"`environmentVariables.{key}` in {reader.source} must be a string, "
                f"not {_kind(value)}"
            )
    return {str(k): str(v) for k, v in variables.items()}


def _warn_ignored(reader: _Reader, data: dict[str, Any]) -> None:
    def has_content(value: Any) -> bool:
        if isinstance(value, dict):
            return any(has_content(v) for v in value.values())
        return value not in (None, "", [], False)

    for where in _WARN_IF_SET:
        value: Any = data
        for key in where.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if has_content(value):
            reader.warnings.append(f"`{where}` in {reader.source} has no Kiln equivalent; ignored")
    for where in _WARN_IF_FALSE:
        if reader.get(reader.section(data, "docker"), where, bool) is False:
            reader.warnings.append(
                f"`{where}: false` in {reader.source} has no Kiln equivalent; ignored (written "
                f"back as the SDK's default, true)"
            )


def _header(reader: _Reader, data: dict[str, Any]) -> tuple[str, str | None]:
    name = reader.text(data, "name")
    if name is None:
        raise InvalidDefinition(f"`name` in {reader.source} is required; name the environment")
    version = reader.get(data, "version", str, int)
    version = None if version is None else str(version)
    if set(data) <= {"name", "version"}:  # as azureml-core reads it: a registered version
        raise base.RegisteredReference(reader.source, name, version)
    return name, version


def load(path: Path) -> Loaded:
    """Read an azureml-core environment folder (or its ``azureml_environment.json``)."""
    directory = path.parent if path.name == DEFINITION_FILE and path.is_file() else path
    json_path = directory / DEFINITION_FILE
    if not json_path.is_file():
        raise InvalidDefinition(
            f"{json_path} does not exist; point at a folder written by Environment."
            "save_to_directory, or create one with `kiln env scaffold --format azure-v1`"
        )
    reader = _Reader(directory, str(json_path), files=[json_path])
    data = base.read_mapping(json_path, kind="json")
    name, version = _header(reader, data)
    python, conda_variables = _python(reader, data)
    fields = {
        "name": name,
        "version": version,
        "python": python,
        "environment_variables": {**conda_variables, **_variables(reader, data)},
        "docker": _docker(reader, data),
        "spark": _spark(reader, data),
        "inferencing_stack_version": reader.text(data, "inferencingStackVersion"),
        "asset_id": reader.text(data, "assetId"),
    }
    definition = validate_definition(fields, source=reader.source)
    _warn_ignored(reader, data)
    definition = base.resolve_local_inputs(definition, directory)
    return Loaded(definition, tuple(reader.warnings), tuple(reader.files))
