"""Builders, one module each behind the interface in base.py, registered by name."""

from __future__ import annotations

import importlib
from types import ModuleType

from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.packages import parse_conda_entry

BUILDERS: dict[str, str] = {
    "venv": "kiln.builders.venv",
    "user-managed": "kiln.builders.user_managed",
    "conda": "kiln.builders.conda",
}
_IMPLIED_CONDA = {"python", "pip"}


def choose(definition: EnvironmentDefinition) -> str:
    """The builder for a definition. Conda packages beyond python and pip need conda."""
    if definition.python.user_managed:
        return "user-managed"
    conda = [parse_conda_entry(p).name for p in definition.python.conda.packages]
    if any(n not in _IMPLIED_CONDA for n in conda):
        return "conda"
    return "venv"


def module(name: str) -> ModuleType:
    from kiln.builders.base import BuildError

    if name not in BUILDERS:
        raise BuildError(
            f"the {name!r} builder is not available yet; conda packages other than python and pip "
            "need it (move the packages to python.pip if they are on PyPI)"
        )
    return importlib.import_module(BUILDERS[name])
