"""A registered definition as Kiln YAML data, straight from the JSON the registry stores: what
``kiln_yaml.to_data`` gives for the definition validated again, without importing pydantic.

Why: ``kiln env show`` must cost little more than starting Python, and importing pydantic alone
takes longer than that (see registry/fastread.py). The registry stores a definition already
validated and normalized, as key-sorted JSON without defaults or the name, version, description
and tags columns; what is left to do is the models' field order, the digests Kiln computes left
out, and the columns put back. ``SHAPE`` mirrors the models: tests/environment/test_stored.py
keeps it equal to them and compares this with ``to_data`` on many definitions.
"""

from __future__ import annotations

from typing import Any

# Each model's fields in declaration order, with the model of a field that holds one (or a list
# of them), starting at "EnvironmentDefinition".
SHAPE: dict[str, dict[str, str | None]] = {
    "EnvironmentDefinition": {
        "name": None,
        "version": None,
        "description": None,
        "tags": None,
        "python": "PythonSection",
        "environment_variables": None,
        "docker": "DockerSection",
        "spark": "SparkSection",
        "r": "RSection",
        "inferencing_stack_version": None,
        "inference_config": "InferenceConfig",
        "asset_id": None,
    },
    "PythonSection": {
        "version": None,
        "conda": "CondaSection",
        "pip": "PipSection",
        "user_managed": None,
        "interpreter_path": None,
        "check_imports": None,
    },
    "CondaSection": {"channels": None, "packages": None},
    "PipSection": dict.fromkeys(
        (
            "packages",
            "constraints",
            "index_url",
            "extra_index_urls",
            "find_links",
            "pre",
            "file_digests",
        )
    ),
    "DockerSection": {
        "base_image": None,
        "base_image_registry": "RegistryRef",
        "dockerfile": None,
        "build_context": None,
        "dockerfile_path": None,
        "build_context_digest": None,
        "build_context_commit": None,
        "platform": "Platform",
        "enabled": None,
        "shm_size": None,
        "arguments": None,
    },
    "RegistryRef": {"address": None, "username": None, "password": None},
    "Platform": {"os": None, "architecture": None},
    "SparkSection": {"repositories": None, "packages": "SparkPackage", "precache_packages": None},
    "SparkPackage": {"group": None, "artifact": None, "version": None},
    "RSection": {
        "r_version": None,
        "user_managed": None,
        "rscript_path": None,
        "snapshot_date": None,
        "cran_packages": "RCranPackage",
        "github_packages": "RGitHubPackage",
        "custom_url_packages": None,
        "bioconductor_packages": None,
    },
    "RCranPackage": {"name": None, "version": None, "repository": None},
    "RGitHubPackage": {"repository": None, "auth_token": None},
    "InferenceConfig": dict.fromkeys(
        ("liveness_route", "readiness_route", "scoring_route"), "Route"
    ),
    "Route": {"path": None, "port": None},
}
# Filled in by Kiln from the files themselves: never part of the YAML (as kiln_yaml._COMPUTED).
COMPUTED: dict[str, str] = {"PipSection": "file_digests", "DockerSection": "build_context_digest"}
_SECTIONS = ("python", "docker", "spark")  # dropped when empty, as kiln_yaml.to_data does


class UnknownShape(ValueError):
    """The stored JSON has a key or a value the models do not: the caller takes the full path."""


def _ordered(value: Any, model: str) -> Any:
    if isinstance(value, list):
        return [_ordered(item, model) for item in value]
    fields = SHAPE[model]
    if not isinstance(value, dict) or not set(value) <= set(fields):
        raise UnknownShape(f"{model}: {value!r}")
    found = {}
    for name, nested in fields.items():
        if name in value and name != COMPUTED.get(model):
            found[name] = value[name] if nested is None else _ordered(value[name], nested)
    return found


def yaml_data(
    stored: dict[str, Any],
    *,
    name: str,
    version: str,
    description: str | None,
    tags: dict[str, str],
) -> dict[str, Any]:
    """The Kiln YAML mapping (defaults and computed digests left out) of a stored definition;
    raises ``UnknownShape`` for JSON that is not a current stored definition."""
    if set(stored) & {"name", "version", "description", "tags"}:
        raise UnknownShape("the stored JSON holds a registry column")
    columns: dict[str, Any] = {"name": name, "version": version}
    if description is not None:
        columns["description"] = description
    if tags:
        columns["tags"] = tags
    data: dict[str, Any] = _ordered({**stored, **columns}, "EnvironmentDefinition")
    for section in _SECTIONS:
        if data.get(section) == {}:
            del data[section]
    return data
