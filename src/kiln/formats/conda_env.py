"""conda ``environment.yml``: name, channels, dependencies (with a ``pip:`` sub-list), variables.

The two ``spec_*`` functions are shared with the Azure ML formats, whose conda files are the
same thing. Normal form, so that parse -> write -> parse is the identity:
- ``python=X`` becomes ``python.version``; any other python spec stays a conda package;
- a bare ``pip`` that is the only conda package is implied by pip packages and is dropped;
  with other conda packages and a ``pip:`` sub-list, ``pip`` is added if missing;
- pip options inside the sub-list (``--index-url``, ``--extra-index-url``, ``--find-links``,
  ``--pre``) become pip options; comments are never packages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kiln.environment.definition import EnvironmentDefinition, PythonSection
from kiln.environment.packages import conda_python_version, parse_conda_entry
from kiln.environment.validation import validate_definition, validate_model
from kiln.errors import InvalidDefinition
from kiln.formats.base import (
    Loaded,
    dump_yaml,
    known_keys,
    name_from_folder,
    read_mapping,
    resolve_local_inputs,
    write_files_atomically,
)

FORMAT = "conda"
DEFAULT_FILE = "environment.yml"
_SPEC_KEYS = {"name", "channels", "dependencies", "prefix", "variables"}
_OPTION = re.compile(r"^(--index-url|-i|--extra-index-url|--find-links|-f|--pre)(?:[=\s]+(.*))?$")

# azureml-core writes a pair of lines into every conda file it creates (a quirk of its bundled
# index_location.txt): `--find-links BASE/simple/index.html` and `--extra-index-url BASE/simple`,
# with BASE its default package index, so they carry no information. Recognised by that shape.
_AZUREML_FIND_LINKS = re.compile(r"^--find-links (?P<base>https://[^ ]+)/simple/index\.html$")


def _azureml_default_pair(lines: list[str]) -> set[str]:
    """The two quirk lines, if both are present with the same base; else nothing."""
    normalized = {" ".join(str(line).split()) for line in lines}
    for line in normalized:
        match = _AZUREML_FIND_LINKS.match(line)
        partner = f"--extra-index-url {match.group('base')}/simple" if match else None
        if partner in normalized:
            return {line, partner}
    return set()


def _pip_options(lines: list[str], source: str) -> tuple[list[str], dict[str, Any], list[str]]:
    packages: list[str] = []
    options: dict[str, Any] = {"extra_index_urls": [], "find_links": []}
    warnings: list[str] = []
    quirk = _azureml_default_pair(lines)
    for raw in lines:
        line = " ".join(str(raw).split())
        if not line or line.startswith("#"):
            if line:
                warnings.append(f"{source}: {line!r} in the pip list is a comment, not a package")
            continue
        if line in quirk:
            continue
        match = _OPTION.match(line)
        if match is None:
            if line.startswith("-"):
                raise InvalidDefinition(
                    f"`dependencies.pip`: {line!r} in {source} is not supported; list packages "
                    "and --index-url/--extra-index-url/--find-links/--pre only"
                )
            packages.append(line)
            continue
        flag, value = match.group(1), (match.group(2) or "").strip()
        if flag == "--pre":
            options["pre"] = True
        elif not value:
            raise InvalidDefinition(f"`dependencies.pip`: {flag} in {source} needs a URL")
        elif flag in ("--index-url", "-i"):
            options["index_url"] = value
        elif flag == "--extra-index-url":
            options["extra_index_urls"].append(value)
        else:
            options["find_links"].append(value)
    return packages, {"packages": packages, **options}, warnings


def _lists_pip(conda_packages: list[str]) -> bool:
    """True when pip is among the conda packages, pinned (``pip=24.0``) or not. A spec that
    does not parse is not pip: the section's validation names it with the fix."""
    return any(_conda_name(p) == "pip" for p in conda_packages)


def _conda_name(spec: str) -> str | None:
    try:
        return parse_conda_entry(spec).name
    except ValueError:
        return None


def spec_to_python(
    data: dict[str, Any], *, source: str
) -> tuple[PythonSection, dict[str, str], list[str]]:
    """A parsed conda spec -> (python section, variables, warnings)."""
    known_keys(data, _SPEC_KEYS, where="", source=source)
    channels = data.get("channels") or []
    dependencies = data.get("dependencies") or []
    if not isinstance(channels, list) or not isinstance(dependencies, list):
        raise InvalidDefinition(f"`channels` and `dependencies` in {source} must be lists")
    version: str | None = None
    conda: list[str] = []
    pip_lines: list[str] | None = None
    for index, item in enumerate(dependencies):
        if isinstance(item, dict):
            known_keys(item, {"pip"}, where="dependencies.", source=source)
            if not isinstance(item.get("pip"), list):
                raise InvalidDefinition(f"`dependencies[{index}].pip` in {source} must be a list")
            for position, line in enumerate(item["pip"]):
                if not isinstance(line, str):
                    raise InvalidDefinition(
                        f"`dependencies[{index}].pip[{position}]` in {source} must be a string"
                    )
            pip_lines = (pip_lines or []) + list(item["pip"])
        elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
            spec = str(item)
            found = conda_python_version(spec) if version is None else None
            if found is not None:
                version = found
            else:
                conda.append(spec)
        else:
            raise InvalidDefinition(f"`dependencies[{index}]` in {source} must be a string or pip:")
    _packages, pip, warnings = _pip_options(pip_lines or [], source)
    if conda == ["pip"]:
        conda = []
    elif conda and pip_lines is not None and not _lists_pip(conda):
        conda.append("pip")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidDefinition(f"`variables` in {source} must be a mapping")
    for key, value in variables.items():
        # YAML turns yes/null/11.10 into True/None/11.1: only take what reads back unchanged.
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidDefinition(f"`variables.{key}` in {source} must be a string; quote it")
    python = validate_model(
        PythonSection,
        {"version": version, "conda": {"channels": channels, "packages": conda}, "pip": pip},
        source=source,
        prefix=("python",),
    )
    return python, {str(k): str(v) for k, v in variables.items()}, warnings


def python_to_spec(definition: EnvironmentDefinition, *, name: str | None = None) -> dict[str, Any]:
    """The conda spec for a definition's python section (no variables)."""
    python = definition.python
    dependencies: list[Any] = [f"python={python.version}"] if python.version else []
    dependencies += python.conda.packages
    pip = python.pip
    lines = [f"--index-url {pip.index_url}"] if pip.index_url else []
    lines += [f"--extra-index-url {u}" for u in pip.extra_index_urls]
    lines += [f"--find-links {u}" for u in pip.find_links]
    lines += ["--pre"] if pip.pre else []
    lines += pip.packages
    if lines:
        if not _lists_pip(python.conda.packages):
            dependencies.append("pip")
        dependencies.append({"pip": lines})
    spec: dict[str, Any] = {"name": name or definition.name}
    if python.conda.channels:
        spec["channels"] = list(python.conda.channels)
    spec["dependencies"] = dependencies
    return spec


def dropped_fields(definition: EnvironmentDefinition) -> list[str]:
    """Fields a conda environment file cannot hold, so a save would lose them."""
    docker, spark = definition.docker, definition.spark
    checks = {
        "python.pip.constraints": bool(definition.python.pip.constraints),
        "python.user_managed": definition.python.user_managed,
        "python.check_imports": bool(definition.python.check_imports),
        "docker": bool(docker.model_dump(exclude_defaults=True, exclude={"build_context_digest"})),
        "spark": bool(spark.packages or spark.repositories),
        "inferencing_stack_version": definition.inferencing_stack_version is not None,
        "inference_config": definition.inference_config is not None,
        "asset_id": definition.asset_id is not None,
    }
    return [name for name, lost in checks.items() if lost]


def load(path: Path, *, name: str | None = None) -> Loaded:
    data = read_mapping(path)
    python, variables, warnings = spec_to_python(data, source=str(path))
    name = name or str(data.get("name") or name_from_folder(path.parent.absolute()))
    definition = validate_definition(
        {"name": name, "python": python.model_dump(), "environment_variables": variables},
        source=str(path),
    )
    return Loaded(resolve_local_inputs(definition, path.parent), tuple(warnings), (path,))


def render(definition: EnvironmentDefinition) -> str:
    spec = python_to_spec(definition)
    if definition.environment_variables:
        spec["variables"] = dict(definition.environment_variables)
    return dump_yaml(spec)


def save(definition: EnvironmentDefinition, path: Path) -> list[Path]:
    """Write ``environment.yml`` into the folder ``path`` (or to ``path`` if it ends in .yml)."""
    target = path if path.suffix in (".yml", ".yaml") else path / DEFAULT_FILE
    return write_files_atomically(target.parent, {target.name: render(definition).encode()})
