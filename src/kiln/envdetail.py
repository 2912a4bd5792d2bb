"""One environment version as ``kiln env show`` reports it: the public summary, the definition
as Kiln YAML data with secrets masked, and the other versions that share its build.

Why two paths: the embedded registry and the curated index answer with the standard library
(``shown_fast``), so ``show`` costs little more than starting Python; PostgreSQL, a database
that is not at the current schema, a stored definition the fast reader does not recognise, or a
reference that names nothing go through the catalog (``shown``), which also raises the errors.
Tests compare the two on the same data, field by field and as printed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

from kiln import curated
from kiln.environment.reference import CURATED_PREFIX, parse_reference
from kiln.environment.stored import yaml_data
from kiln.secrets import redact, shown_value

if TYPE_CHECKING:
    from kiln.catalog import EnvironmentRecord
    from kiln.workspace import Workspace


class Shown(NamedTuple):  # not a dataclass: importing dataclasses costs ~3 ms
    summary: dict[str, Any]  # the public environment-version fields
    definition: dict[str, Any]  # Kiln YAML data, secrets masked
    same_build_as: list[str]


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    """Variables that look secret shown as references or hidden; channel credentials hidden
    (an old record may still hold a channel password). Always has ``environment_variables``."""
    variables = data.get("environment_variables", {})
    data["environment_variables"] = {k: shown_value(k, v) or "" for k, v in variables.items()}
    conda = data.get("python", {}).get("conda", {})
    if conda.get("channels"):
        conda["channels"] = [redact(channel) for channel in conda["channels"]]
    return data


def shown_definition(record: EnvironmentRecord, *, digests: bool = False) -> dict[str, Any]:
    """The record's definition as Kiln YAML data, secrets masked: what any face shows; with
    ``digests``, also what its local files hold (a client fetches them by those to build)."""
    from kiln.formats import kiln_yaml

    return _masked(kiln_yaml.to_data(record.definition, digests=digests))


def shown(workspace: Workspace, record: EnvironmentRecord) -> Shown:
    """Through the catalog: any workspace, any record."""
    from kiln import catalog

    return Shown(record.summary(), shown_definition(record), catalog.same_build(workspace, record))


def shown_fast(workspace: Workspace, reference: str) -> Shown | None:
    """With the standard library only, or None: the caller takes ``shown``."""
    name, version = parse_reference(reference)
    return _fast_named(workspace, name, version)


def _fast_named(workspace: Workspace, name: str, version: str | None) -> Shown | None:
    if name.startswith(CURATED_PREFIX):
        return _curated(workspace, name, version)
    if not workspace.is_embedded:
        return None
    from kiln.registry.fastread import find_version

    found = find_version(workspace.registry_file, name=name, version=version)
    if found is None:
        return None
    return _from_stored(found.summary, found.definition, found.same_build)


def shown_named(workspace: Workspace, name: str, version: str | None) -> Shown:
    """``shown(catalog.get(...))`` with the fewest reads (for the server, where every
    request pays them): the fast path, else one connection of the registry's; the catalog
    when neither can answer, which also raises the errors."""
    found = None
    if name.startswith(CURATED_PREFIX) or workspace.is_embedded:
        found = _fast_named(workspace, name, version)
    elif workspace.server_url is None:
        found = _one_connection(workspace, name, version)
    if found is not None:
        return found
    from kiln import catalog

    return shown(workspace, catalog.get(workspace, name, version))


def _one_connection(workspace: Workspace, name: str, version: str | None) -> Shown | None:
    from kiln.catalog import row_summary
    from kiln.registry.queries import get_version, same_build

    with workspace.engine.connect() as connection:
        row = get_version(connection, name=name, version=version)
        if row is None:
            return None
        shared = same_build(connection, build_hash=row.build_hash)
    others = [f"{n}:{v}" for n, v in shared if (n, v) != (row.name, row.version)]
    return _from_stored(row_summary(row), row.definition, others)


def _from_stored(summary: dict[str, Any], definition: str, others: list[str]) -> Shown | None:
    """What ``shown`` gives, from a row's summary, its stored JSON and the other versions of
    its build; None when the stored JSON is not of a shape ``yaml_data`` knows."""
    try:
        data = yaml_data(
            json.loads(definition),
            name=summary["name"],
            version=summary["version"],
            description=summary["description"],
            tags=summary["tags"],
        )
    except (ValueError, TypeError):  # UnknownShape, or JSON that is not a mapping
        return None
    shared = others + curated.sharing_build(summary["build_hash"], besides=summary["name"])
    return Shown(summary, _masked(data), shared)


def _curated(workspace: Workspace, name: str, version: str | None) -> Shown | None:
    for entry in curated.indexed_entries():
        data = entry["definition"]
        if entry["name"] != name or version not in (None, data.get("version")):
            continue
        summary = {k: v for k, v in entry.items() if k != "definition"}
        shared = _registered_sharing(workspace, summary)
        return None if shared is None else Shown(summary, _masked(data), shared)
    return None


def _registered_sharing(workspace: Workspace, summary: dict[str, Any]) -> list[str] | None:
    if not workspace.is_embedded:
        return None
    from kiln.registry.fastread import same_build

    found = same_build(workspace.registry_file, summary["build_hash"])
    if found is None:
        return None
    others = curated.sharing_build(summary["build_hash"], besides=summary["name"])
    return [f"{n}:{v}" for n, v in found] + others
