"""Pick the format of a file or folder, and load or save through the right module."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from kiln.environment.definition import EnvironmentDefinition
from kiln.errors import InvalidDefinition
from kiln.formats.base import ContentLookup, Loaded, local_files_for_save, read_mapping
from kiln.formats.base import write_files_atomically

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
_V2_ONLY_KEYS = {"$schema", "image", "conda_file", "build", "os_type", "inference_config"}


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
    keys = set(read_mapping(path))
    schema = str(read_mapping(path).get("$schema", ""))
    if "azureml" in schema or keys & (_V2_ONLY_KEYS - {"$schema"}):
        return "azure-v2"
    if "dependencies" in keys and "python" not in keys:
        return "conda"
    return "kiln"


def locate(path: Path, fmt: str | None = None) -> tuple[str, Path]:
    """(format, the path its module loads) for a file or a folder."""
    if not path.exists():
        raise InvalidDefinition(f"{path} does not exist")
    if path.is_file():
        return fmt or detect_file(path), path
    for marker, marker_format in DIRECTORY_MARKERS:
        if (path / marker).is_file() and fmt in (None, marker_format):
            return marker_format, path if marker_format == "azure-v1" else path / marker
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


def save_definition(
    definition: EnvironmentDefinition,
    target: Path,
    fmt: str = "kiln",
    *,
    source_dir: Path | None = None,
    lookup: ContentLookup | None = None,
) -> list[Path]:
    """Save into folder ``target``: local inputs (wheels, build context) first, then the
    definition files, so an interrupted save never leaves a definition without its inputs."""
    module = format_module(fmt)
    inputs = local_files_for_save(definition, source_dir=source_dir, lookup=lookup)
    written = write_files_atomically(target, inputs) if inputs else []
    saved: list[Path] = module.save(definition, target)
    return written + saved


def dropped_fields(definition: EnvironmentDefinition, fmt: str) -> list[str]:
    """Fields that ``fmt`` has no place for; saving in it would lose them."""
    module = format_module(fmt)
    dropped = getattr(module, "dropped_fields", None)
    return list(dropped(definition)) if dropped else []
