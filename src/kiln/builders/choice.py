"""Which builder builds a definition, and the builders by name (``BUILDERS``).

Builder names appear nowhere else in Kiln: the core asks ``choose`` for a definition's builder,
records its ``name`` with each build, and finds it again with ``get``. Importing this module
imports every builder; ``kiln.builders`` itself imports none, so a warm build that needs only
the venv builder's parts does not pay for the others (or for pydantic).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln.builders import conda, image, user_image, user_managed, venv
from kiln.builders.base import Builder, BuildError
from kiln.environment.packages import parse_conda_entry

if TYPE_CHECKING:
    from kiln.environment.definition import EnvironmentDefinition

BUILDERS: dict[str, Builder] = {
    venv.name: venv,
    user_managed.name: user_managed,
    conda.name: conda,
    image.name: image,
    user_image.name: user_image,
}
_IMPLIED_CONDA = {"python", "pip"}


def choose(definition: EnvironmentDefinition, *, host_only: bool = False) -> Builder:
    """The builder for a definition. A docker section makes an image (``host_only`` builds
    only its Python part on this machine instead: an explicit choice, never a fallback).
    Conda packages beyond python and pip need conda."""
    docker = definition.docker
    if not host_only and (docker.base_image or docker.dockerfile or docker.build_context):
        if definition.python.user_managed:
            return user_image
        if _needs_conda(definition):
            raise BuildError(
                "an image with conda packages cannot be built by this version of Kiln yet; "
                "build its Python part on this machine with --host-only"
            )
        return image
    if definition.python.user_managed:
        return user_managed
    return conda if _needs_conda(definition) else venv


def _needs_conda(definition: EnvironmentDefinition) -> bool:
    names = [parse_conda_entry(p).name for p in definition.python.conda.packages]
    return any(n not in _IMPLIED_CONDA for n in names)


def reads_conda_channels(builder: Builder) -> bool:
    """True for the builder that fetches from ``python.conda.channels``: only its builds need
    the channels' credentials set."""
    return builder is conda


def get(name: str) -> Builder:
    """The builder registered as ``name`` (as recorded with a build)."""
    if name not in BUILDERS:
        raise BuildError(
            f"the {name!r} builder is not available in this version of Kiln "
            f"(it has {', '.join(sorted(BUILDERS))}); upgrade Kiln to use this build"
        )
    return BUILDERS[name]
