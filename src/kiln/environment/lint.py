"""Advice on a definition: what makes it unreproducible, ambiguous or unsafe."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.packages import is_env_reference, parse_conda_entry, parse_pip_entry

_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|CREDENTIAL)", re.I)
_IMPLIED_CONDA = {"python", "pip"}


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "warning"
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pins(definition: EnvironmentDefinition) -> list[tuple[str, str, str]]:
    """(field, name, exact version) for every exact pin, pip and conda alike."""
    pins = []
    for index, entry in enumerate(definition.python.pip.packages):
        parsed = parse_pip_entry(entry)
        if parsed.kind == "requirement" and parsed.is_pinned and parsed.name:
            pins.append((f"python.pip.packages[{index}]", parsed.name, parsed.specifier.lstrip("=")))
    for index, entry in enumerate(definition.python.conda.packages):
        conda = parse_conda_entry(entry)
        version = conda.constraint.lstrip("=").split()[0] if conda.constraint else ""
        if conda.is_pinned and conda.name not in _IMPLIED_CONDA:
            pins.append((f"python.conda.packages[{index}]", conda.name, version))
    return pins


def _unpinned(definition: EnvironmentDefinition) -> list[Finding]:
    found = []
    for index, entry in enumerate(definition.python.pip.packages):
        parsed = parse_pip_entry(entry)
        if not parsed.is_pinned:
            found.append(Finding("warning", f"python.pip.packages[{index}]",
                                 f"{entry!r} is not pinned; write {parsed.name}==VERSION"))
    for index, entry in enumerate(definition.python.conda.packages):
        conda = parse_conda_entry(entry)
        if conda.name not in _IMPLIED_CONDA and not conda.is_pinned:
            found.append(Finding("warning", f"python.conda.packages[{index}]",
                                 f"{entry!r} is not pinned; write {conda.name}=VERSION"))
    return found


def _duplicates_and_conflicts(definition: EnvironmentDefinition) -> list[Finding]:
    found = []
    seen: dict[tuple[str, str], str] = {}
    for source, entries in (("pip", definition.python.pip.packages), ("conda", definition.python.conda.packages)):
        for index, entry in enumerate(entries):
            name = parse_pip_entry(entry).name if source == "pip" else parse_conda_entry(entry).name
            field = f"python.{source}.packages[{index}]"
            if name and (source, name) in seen:
                found.append(Finding("warning", field, f"{name} is listed twice (also {seen[(source, name)]})"))
            if name:
                seen.setdefault((source, name), field)
    pinned: dict[str, tuple[str, str]] = {}
    for field, name, version in _pins(definition):
        if name in pinned and pinned[name][1] != version:
            other_field, other = pinned[name]
            found.append(Finding("error", field, f"{name} is pinned to {version} here and to {other} "
                                                 f"in {other_field}; keep one pin"))
        pinned.setdefault(name, (field, version))
    return found


def _image(definition: EnvironmentDefinition) -> list[Finding]:
    image = definition.docker.base_image
    if not image or "@sha256:" in image:
        return []
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return [Finding("warning", "docker.base_image", f"{image!r} has no tag; pin a tag or a digest")]
    if last.endswith(":latest"):
        return [Finding("warning", "docker.base_image", f"{image!r} uses 'latest', which moves; pin a tag or a digest")]
    return []


def _other(definition: EnvironmentDefinition) -> list[Finding]:
    found = []
    for key, value in definition.environment_variables.items():
        if _SECRET_NAME.search(key) and not is_env_reference(value):
            found.append(Finding("error", f"environment_variables.{key}",
                                 f"{key} looks like a secret stored in plain text; write {key}: ${{{key}}} "
                                 "and set it where the environment runs"))
    python = definition.python
    if python.user_managed and (python.pip.packages or python.conda.packages):
        found.append(Finding("warning", "python.user_managed",
                             "packages are listed but user_managed is true, so Kiln installs none of them"))
    return found


def lint(definition: EnvironmentDefinition) -> list[Finding]:
    return _unpinned(definition) + _duplicates_and_conflicts(definition) + _image(definition) + _other(definition)
