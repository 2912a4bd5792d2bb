"""Pick the format of a file or folder, and load or save through the right module."""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from kiln.environment.definition import EnvironmentDefinition
from kiln.errors import Conflict, InvalidDefinition
from kiln.formats.azure_job import is_job
from kiln.formats.base import (
    ContentLookup,
    Loaded,
    local_files_for_save,
    read_mapping,
    write_files_atomically,
)

FORMATS: dict[str, str] = {
    "kiln": "kiln.formats.kiln_yaml",
    "azure-v1": "kiln.formats.azure_v1",
    "azure-v2": "kiln.formats.azure_v2",
    "conda": "kiln.formats.conda_env",
    "requirements": "kiln.formats.requirements",
}
# The file that marks a folder as holding a definition in each format, most specific first.
DIRECTORY_MARKERS: tuple[tuple[str, str], ...] = (
    ("kiln.yaml", "kiln"),
    ("kiln.yml", "kiln"),
    ("azureml_environment.json", "azure-v1"),
    ("environment.yaml", "azure-v2"),
    ("environment.yml", "conda"),
    ("requirements.txt", "requirements"),
)
# Keys only one YAML format has. ``inference_config`` is in both Kiln YAML and Azure ML v2.
_KILN_ONLY_KEYS = {
    "python",
    "docker",
    "spark",
    "environment_variables",
    "inferencing_stack_version",
}
_V2_ONLY_KEYS = {"image", "conda_file", "build", "os_type", "datastore"}
# Markers whose name several formats use (conda's ``environment.yaml`` is common): read to tell.
_SNIFFED_MARKERS = {"environment.yaml", "environment.yml"}


def format_module(name: str) -> ModuleType:
    if name not in FORMATS:
        raise InvalidDefinition(f"unknown format {name!r}; choose one of: {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[name])


def detect_file(path: Path) -> str:
    """The format of a single file, from its name and, for YAML, its keys."""
    if path.name == "azureml_environment.json":
        return "azure-v1"
    if path.suffix == ".txt":
        return "requirements"
    if path.suffix not in (".yml", ".yaml"):
        raise InvalidDefinition(
            f"cannot tell the format of {path}; pass --format ({', '.join(FORMATS)})"
        )
    data = read_mapping(path)
    keys = set(data)
    if is_job(data):  # a command job's inline environment (it may hold environment_variables)
        return "azure-v2"
    if keys & _KILN_ONLY_KEYS:
        return "kiln"
    if "azureml" in str(data.get("$schema", "")) or keys & _V2_ONLY_KEYS:
        return "azure-v2"
    if "dependencies" in keys:
        return "conda"
    return "kiln"


def locate(path: Path, fmt: str | None = None) -> tuple[str, Path]:
    """(format, the path its module loads) for a file or a folder."""
    if fmt is not None:
        format_module(fmt)  # an unknown name is the first thing to report
    if not path.exists():
        raise InvalidDefinition(f"{path} does not exist")
    if path.is_file():
        return fmt or detect_file(path), path
    for marker, marker_format in DIRECTORY_MARKERS:
        candidate = path / marker
        if not candidate.is_file() or fmt not in (None, marker_format):
            continue
        if fmt is None and marker in _SNIFFED_MARKERS:
            marker_format = detect_file(candidate)
        return marker_format, path if marker_format == "azure-v1" else candidate
    names = ", ".join(m for m, f in DIRECTORY_MARKERS if fmt in (None, f))
    raise InvalidDefinition(
        f"{path} holds no environment definition (looked for {names}); "
        "create one with `kiln env scaffold`"
    )


def load_path(path: Path, fmt: str | None = None) -> Loaded:
    """Load a definition from a file or a folder in any supported format."""
    found_format, target = locate(path, fmt)
    loaded: Loaded = format_module(found_format).load(target)
    return loaded


# What each format's loader reads in a folder: a save removes these when it does not write them
# (or they would be read back as part of the new definition).
FORMAT_FILES: dict[str, tuple[str, ...]] = {
    "kiln": ("kiln.yaml",),
    "azure-v1": ("azureml_environment.json", "conda_dependencies.yml", "BaseDockerfile"),
    "azure-v2": ("environment.yaml", "conda.yaml", "docker-context"),
    "conda": ("environment.yml",),
    "requirements": ("requirements.txt", "constraints.txt"),
}


def save_definition(
    definition: EnvironmentDefinition,
    target: Path,
    fmt: str = "kiln",
    *,
    source_dir: Path | None = None,
    lookup: ContentLookup | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Save into folder ``target`` with its local inputs (wheels, build context).

    Everything is written to a staging folder first. Without ``overwrite``, nothing that exists
    in ``target`` is replaced or removed: the save is refused and names the first clash.
    """
    module = format_module(fmt)
    _refuse_enclosing_context(definition)
    target = target.absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".kiln-save-{target.name}-", dir=target.parent))
    try:
        inputs = local_files_for_save(definition, source_dir=source_dir, lookup=lookup)
        if inputs:
            write_files_atomically(staging, inputs)
        module.save(definition, staging)
        produced = sorted(
            p.name for p in staging.iterdir() if not p.name.startswith(".kiln-write-")
        )
        stale = [
            n for n in FORMAT_FILES.get(fmt, ()) if n not in produced and (target / n).exists()
        ]
        clashes = [
            n for n in produced if (target / n).exists() or (target / n).is_symlink()
        ] + stale
        # Another format's definition file here would be read instead of this one.
        clashes += [m for m, _ in DIRECTORY_MARKERS if m not in produced and (target / m).exists()]
        if clashes and not overwrite:
            raise Conflict(
                f"{target / clashes[0]} already exists; pass --force (overwrite=True) to replace it"
            )
        target.mkdir(exist_ok=True)
        for name in [*produced, *stale]:
            _remove(target / name)
        for name in produced:
            os.replace(staging / name, target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(p for name in produced for p in _files_under(target / name))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _files_under(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def _refuse_enclosing_context(definition: EnvironmentDefinition) -> None:
    """A build context that is the definition's own folder would hold the saved definition
    files too, so the copy's content (and build hash) could never match the original."""
    context = definition.docker.build_context
    if context is not None and os.path.normpath(context) == ".":
        raise InvalidDefinition(
            f"`docker.build_context` is {context!r}, the definition's own folder, so it cannot be "
            "saved elsewhere unchanged; move the Dockerfile and its files into a subfolder and "
            "point build_context (build.path) at it"
        )


def completed(
    definition: EnvironmentDefinition, fmt: str, *, default_image: str | None = None
) -> tuple[EnvironmentDefinition, list[str]]:
    """The definition as ``fmt`` must hold it (a v2 file needs an image: ``default_image``, the
    workspace's default base image, or the format's own default), and a warning for each
    value added."""
    complete = getattr(format_module(fmt), "complete", None)
    if complete is None:
        return definition, []
    result: tuple[EnvironmentDefinition, list[str]] = complete(definition, default_image)
    return result


def dropped_fields(definition: EnvironmentDefinition, fmt: str) -> list[str]:
    """Fields that ``fmt`` has no place for; saving in it would lose them."""
    module = format_module(fmt)
    dropped = getattr(module, "dropped_fields", None)
    return list(dropped(definition)) if dropped else []


def export(
    definition: EnvironmentDefinition,
    target: Path,
    fmt: str,
    *,
    default_image: str | None = None,
    **options: Any,
) -> tuple[list[Path], list[str]]:
    """Save as ``fmt`` requires (see ``completed``) for every face: the files written, and the
    warnings a user must see (values added, fields the format has no place for)."""
    definition, notes = completed(definition, fmt, default_image=default_image)
    notes += [
        f"the {fmt} format has no place for `{field}`; it is left out"
        for field in dropped_fields(definition, fmt)
    ]
    return save_definition(definition, target, fmt, **options), notes
