"""pip requirements files (``requirements.txt``), read the way pip reads them.

Reading follows https://pip.pypa.io/en/stable/reference/requirements-file-format/, with Kiln's
rules on top:
- ``-r``/``-c`` files are taken relative to the file that names them, must stay inside the top
  file's folder and are flattened in place, so their content (never their path) is hashed. As in
  pip, the include decides: lines under ``-c`` are constraints, lines under ``-r`` requirements;
- local wheel/sdist paths are rewritten relative to the top file's folder, where
  ``resolve_local_inputs`` reads them and records their sha256;
- only index options and ``--hash`` are supported; any other option is an error naming the file
  and line, never silently dropped. ``${VAR}`` is kept as written: it may be a credential.

The writer puts index options first, constraints into a sibling ``constraints.txt`` (named with
``-c``), then one package per line. It does not copy local wheels: their paths are written as
given, relative to the new file (``dispatch.save_definition`` copies the wheels there).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.validation import validate_definition
from kiln.errors import InvalidDefinition
from kiln.formats.base import Loaded, name_from_folder, resolve_local_inputs, write_files_atomically
from kiln.formats.requirements_lines import ParsedRequirements, parse_lines

__all__ = ["ParsedRequirements", "dropped_fields", "load", "parse_lines", "render", "save"]

FORMAT = "requirements"
DEFAULT_FILE = "requirements.txt"
CONSTRAINTS_FILE = "constraints.txt"


def load(path: Path, *, name: str | None = None) -> Loaded:
    parsed = parse_lines(path)
    pip = {k: v for k, v in asdict(parsed).items() if k not in ("warnings", "files")}
    definition = validate_definition(
        {"name": name or name_from_folder(path.absolute().parent), "python": {"pip": pip}},
        source=str(path),
    )
    return Loaded(resolve_local_inputs(definition, path.parent), parsed.warnings, parsed.files)


def dropped_fields(definition: EnvironmentDefinition) -> list[str]:
    """Fields a requirements file cannot hold, so a save would silently lose them."""
    fields: dict[str, Any] = definition.model_dump(
        exclude_defaults=True, exclude={"name", "version", "description", "tags"}
    )
    python = fields.pop("python", {})
    return sorted([*fields, *(f"python.{key}" for key in python if key != "pip")])


def render(definition: EnvironmentDefinition) -> str:
    pip = definition.python.pip
    lines = [f"# Written by Kiln for {definition.reference}"]
    if dropped := dropped_fields(definition):
        lines.append(f"# Not expressible in a requirements file, left out: {', '.join(dropped)}")
    lines += [f"--index-url {pip.index_url}"] if pip.index_url else []
    lines += [f"--extra-index-url {url}" for url in pip.extra_index_urls]
    lines += [f"--find-links {url}" for url in pip.find_links]
    lines += ["--pre"] if pip.pre else []
    lines += [f"-c {CONSTRAINTS_FILE}"] if pip.constraints else []
    return "\n".join([*lines, *pip.packages]) + "\n"


def save(definition: EnvironmentDefinition, path: Path) -> list[Path]:
    """Write requirements.txt (and constraints.txt) into the folder ``path``, or to ``path``
    itself if it ends in .txt. Local wheels are not copied (see the module docstring)."""
    target = path if path.suffix == ".txt" else path / DEFAULT_FILE
    files = {target.name: render(definition).encode()}
    constraints = definition.python.pip.constraints
    if constraints:
        if target.name == CONSTRAINTS_FILE:
            raise InvalidDefinition(
                f"{target}: the constraints go to {CONSTRAINTS_FILE} beside it; pick another name"
            )
        header = f"# Constraints for {definition.reference}, written by Kiln"
        files[CONSTRAINTS_FILE] = "\n".join([header, *constraints, ""]).encode()
    return write_files_atomically(target.parent, files)
