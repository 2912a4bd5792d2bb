"""Builders, one module each behind the ``Builder`` Protocol in base.py, registered by name.

Builder names appear nowhere else in Kiln: the core asks ``choose`` for a definition's builder,
records its ``name`` with each build, and finds it again with ``get``.
"""

from __future__ import annotations

from kiln.builders import conda, user_managed, venv
from kiln.builders.base import Builder, BuildError
from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.packages import parse_conda_entry

BUILDERS: dict[str, Builder] = {
    venv.name: venv,
    user_managed.name: user_managed,
    conda.name: conda,
}
_IMPLIED_CONDA = {"python", "pip"}


def choose(definition: EnvironmentDefinition) -> Builder:
    """The builder for a definition. Conda packages beyond python and pip need conda."""
    if definition.python.user_managed:
        return user_managed
    conda_names = [parse_conda_entry(p).name for p in definition.python.conda.packages]
    if any(n not in _IMPLIED_CONDA for n in conda_names):
        return conda
    return venv


def get(name: str) -> Builder:
    """The builder registered as ``name`` (as recorded with a build)."""
    if name not in BUILDERS:
        raise BuildError(
            f"the {name!r} builder is not available in this version of Kiln "
            f"(it has {', '.join(sorted(BUILDERS))}); upgrade Kiln to use this build"
        )
    return BUILDERS[name]
