"""What a build needs besides its definition: secret values for ``${VAR}`` references in index
and conda channel URLs (read from the environment at build time, never stored), and local wheels
staged from the workspace's artifact store into the cache by sha256."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.builders.base import BuildError
from kiln.builders.uvtool import MIN_SECRET_LENGTH
from kiln.cache import WHEELS_FOLDER as WHEELS_FOLDER
from kiln.environment.packages import local_file_name
from kiln.secrets import credential_references, references

if TYPE_CHECKING:
    from kiln.cache import Cache
    from kiln.environment.definition import EnvironmentDefinition
    from kiln.workspace import Workspace


def secrets_for(
    definition: EnvironmentDefinition, *, conda_channels: bool = False
) -> dict[str, str]:
    """Values of the ``${VAR}`` references in index URLs, and in the credentials of conda
    channel URLs when ``conda_channels`` (the conda builder reads them), from the environment
    now."""
    pip = definition.python.pip
    wanted = [
        ("the index URL", url, references(url))
        for url in [pip.index_url, *pip.extra_index_urls, *pip.find_links]
        if url
    ]
    if conda_channels:
        wanted += [
            ("the conda channel", url, credential_references(url))
            for url in definition.python.conda.channels
        ]
    secrets = {}
    for what, url, names in wanted:
        for name in names:
            if name not in os.environ:
                raise BuildError(f"{what} {url} uses ${{{name}}}, which is not set; export {name}")
            # A short value could not be redacted from logs without mangling them (see
            # uvtool.redact), so it is refused rather than risked; the value is never shown.
            if len(os.environ[name]) < MIN_SECRET_LENGTH:
                raise BuildError(
                    f"{what} {url} uses ${{{name}}}, whose value is shorter than "
                    f"{MIN_SECRET_LENGTH} characters; Kiln cannot keep so short a secret out of "
                    f"build logs reliably: use a longer password or token for {name}"
                )
            secrets[name] = os.environ[name]
    return secrets


def _stored(workspace: Workspace, digest: str, *, folder: bool) -> Path | None:
    """The stored file or folder with this digest: the workspace's artifact store, or for a
    workspace on a team server, this machine's copy of what the server's store holds."""
    if workspace.server_url is not None:
        from kiln.serverinputs import fetch

        return fetch(workspace, digest, folder=folder)
    return workspace.artifacts.lookup(digest, folder=folder)


def content_lookup(
    workspace: Workspace, definition: EnvironmentDefinition
) -> Callable[[str], Path | None]:
    """Finds the stored content of ``definition``'s local inputs by digest, for saving a copy
    of it (kiln.formats.base.ContentLookup), on a folder or a server workspace alike."""
    folder = definition.docker.build_context_digest
    return lambda digest: _stored(workspace, digest, folder=digest == folder)


def stage_local_wheels(
    workspace: Workspace, cache: Cache, definition: EnvironmentDefinition
) -> dict[str, str]:
    """Copy the local wheels a definition names from the artifact store into the cache.

    Each lands at ``<cache root>/wheels/<sha256>/<original file name>`` (uv needs a wheel's
    file name to install it), written to a temporary name and renamed, and is reused when it is
    there already. Returns pip entry -> staged file relative to ``<cache root>/wheels``.
    """
    staged: dict[str, str] = {}
    if not definition.python.pip.file_digests:
        return staged
    from kiln.artifacts import publish  # imported when needed: a build without files skips it

    for entry, digest in definition.python.pip.file_digests.items():
        file_name = local_file_name(entry)
        final = cache.root / WHEELS_FOLDER / digest / file_name
        if not final.exists():
            source = _stored(workspace, digest, folder=False)
            if source is None or not source.is_file():
                raise BuildError(
                    f"`python.pip.packages`: the workspace does not hold {entry} (sha256 "
                    f"{digest[:12]}); register the definition again from the folder that has it"
                )
            publish(source, final)  # a staged wheel that exists is complete
        staged[entry] = f"{digest}/{file_name}"
    return staged


def stage_build_context(workspace: Workspace, definition: EnvironmentDefinition) -> Path | None:
    """The folder of a definition's ``docker.build_context``, from the artifact store (where
    registering put it), or None when the definition has none."""
    docker = definition.docker
    if not docker.build_context or not docker.build_context_digest:
        return None
    found = _stored(workspace, docker.build_context_digest, folder=True)
    if found is None or not found.is_dir():
        raise BuildError(
            f"`docker.build_context`: the workspace does not hold {docker.build_context!r} "
            f"(sha256 {docker.build_context_digest[:12]}); register the definition again from "
            "the folder that has it"
        )
    return found
