"""Canonical forms and the two digests. Pure functions: no I/O, no clock, no platform.

``build_hash`` covers only what changes the built artifact; ``definition_digest`` covers every
field but name, version, description, tags and asset_id. Both are sha256 over compact, key-sorted JSON of
a canonical form that is documented in docs/hashing.md and pinned by golden tests. Lists keep
their order (reordering packages or channels is a change, as in Azure ML); mappings are sorted.
Empty and default values are left out, so a field added in a later release leaves old digests
alone. Bump a RECIPE constant only when the meaning of a build changes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kiln.environment.definition import DockerSection, EnvironmentDefinition, PipSection
from kiln.environment.packages import (
    normalize_conda_entry,
    normalize_pip_entry,
    parse_conda_entry,
    parse_pip_entry,
    strip_url_credentials,
)
from kiln.errors import InvalidDefinition

BUILD_RECIPE = "kiln.build/1"
DEFINITION_RECIPE = "kiln.definition/1"


def _pruned(value: Any) -> Any:
    """Drop None, empty containers and False, recursively: absent and default hash alike."""
    if isinstance(value, dict):
        items = ((k, _pruned(v)) for k, v in value.items())
        return {k: v for k, v in items if v not in (None, False, [], {}, "")}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _normalize_text(text: str | None) -> str | None:
    if text is None:
        return None
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip("\n")


def _pip(pip: PipSection) -> dict[str, Any]:
    def normalized(entries: list[str]) -> list[str]:
        try:
            return [
                normalize_pip_entry(parse_pip_entry(e), pip.file_digests.get(e)) for e in entries
            ]
        except ValueError as exc:  # a local file or stored wheel whose content is not known here
            raise InvalidDefinition(f"`python.pip.packages`: {exc}") from None

    return {
        "packages": normalized(pip.packages),
        "constraints": normalized(pip.constraints),
        "index_url": strip_url_credentials(pip.index_url) if pip.index_url else None,
        "extra_index_urls": [strip_url_credentials(u) for u in pip.extra_index_urls],
        "find_links": [strip_url_credentials(u) for u in pip.find_links],
        "pre": pip.pre,
    }


def _docker(docker: DockerSection) -> dict[str, Any]:
    git = docker.git_context
    if git is not None and docker.build_context_commit is None:
        raise ValueError("the git build context's ref has not been resolved to a commit")
    if docker.context_folder and docker.build_context_digest is None:
        raise ValueError("the build context has not been read; its content digest is needed")
    registry = docker.base_image_registry
    return {
        "base_image": docker.base_image,
        "registry": registry.address if registry else None,
        "dockerfile": _normalize_text(docker.dockerfile),
        "build_context": docker.build_context_digest if docker.context_folder else None,
        # A commit names its whole tree wherever it is fetched from: the URL (a mirror, a
        # fork) and the ref's name are in the definition digest, not here.
        "git_commit": docker.build_context_commit if git else None,
        "git_subfolder": git.subfolder if git else None,
        "dockerfile_path": (docker.dockerfile_path or "Dockerfile")
        if docker.build_context
        else None,
        "platform": docker.platform.model_dump() if docker.platform else None,
    }


def _conda_packages(packages: list[str], has_pip_packages: bool) -> list[str]:
    """Normalized conda specs. A bare ``pip`` is implied by pip packages (conda formats add it,
    Azure ML adds it), so with pip packages it is left out wherever it stands; alone, it is
    the same as no conda packages at all (the fast venv path)."""
    normalized = [normalize_conda_entry(parse_conda_entry(p)) for p in packages]
    if has_pip_packages or normalized == ["pip"]:
        normalized = [p for p in normalized if p != "pip"]
    return normalized


def build_form(definition: EnvironmentDefinition) -> dict[str, Any]:
    """What changes the built artifact, and nothing else."""
    python = definition.python
    spark = definition.spark
    form = {
        "recipe": BUILD_RECIPE,
        "python": {
            "version": python.version,
            "user_managed": python.user_managed,
            "interpreter_path": python.interpreter_path if python.user_managed else None,
            "conda": {
                "channels": [strip_url_credentials(c).rstrip("/") for c in python.conda.channels],
                "packages": _conda_packages(python.conda.packages, bool(python.pip.packages)),
            },
            "pip": _pip(python.pip),
            # A build shared by hash must have passed the same import check.
            "check_imports": python.check_imports,
        },
        "docker": _docker(definition.docker),
        "spark": {
            "repositories": spark.repositories,
            "packages": [[p.group, p.artifact, p.version] for p in spark.packages],
            "precache": spark.precache_packages if spark.packages else None,
        },
        # What R installs (never a token: those are references, as registry passwords).
        "r": definition.r.model_dump(exclude={"github_packages": {"__all__": {"auth_token"}}})
        if definition.r
        else None,
        "inferencing_stack_version": definition.inferencing_stack_version,
    }
    pruned: dict[str, Any] = _pruned(form)
    return pruned


def docker_run_form(docker: DockerSection) -> dict[str, Any]:
    """How a run's container starts (Azure ML v1's docker settings): not the built artifact."""
    return {"enabled": docker.enabled, "shm_size": docker.shm_size, "arguments": docker.arguments}


def definition_form(definition: EnvironmentDefinition) -> dict[str, Any]:
    """Every field but name, version, description, tags and asset_id (and never a secret's
    value)."""
    registry = definition.docker.base_image_registry
    form = {
        "recipe": DEFINITION_RECIPE,
        "build": build_form(definition),
        "registry_credentials": {
            "username": registry.username if registry else None,
            "password": registry.password if registry else None,  # only ever a ${VAR} reference
        },
        "inference_config": (
            definition.inference_config.model_dump(exclude_none=True)
            if definition.inference_config
            else None
        ),
        "docker_run": docker_run_form(definition.docker),
        # Where a git context is fetched from and which ref was asked for (never a secret:
        # a git URL with credentials is refused).
        "git_context": definition.docker.build_context if definition.docker.git_context else None,
    }
    pruned: dict[str, Any] = _pruned(form)
    # Added after pruning: a variable set to "" is a real setting, unlike an absent field.
    if definition.environment_variables:
        pruned["environment_variables"] = dict(sorted(definition.environment_variables.items()))
    return pruned


def canonical_json(form: dict[str, Any]) -> bytes:
    return json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_hash(definition: EnvironmentDefinition) -> str:
    return hashlib.sha256(canonical_json(build_form(definition))).hexdigest()


def definition_digest(definition: EnvironmentDefinition) -> str:
    return hashlib.sha256(canonical_json(definition_form(definition))).hexdigest()
