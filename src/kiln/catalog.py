"""The one core for environments in a workspace: register, get, list, archive, tag.

Curated definitions ship in the package and are merged into reads; they are never written.
Local inputs (wheels, build contexts) are copied into the artifact store before the registry
row is committed, so a registered version never refers to content the workspace lacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln import curated
from kiln.environment.canonical import build_hash, definition_digest
from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.packages import parse_pip_entry
from kiln.environment.record import (
    EnvironmentRecord,
    RegisterResult,
    curated_record,
)
from kiln.environment.reference import AZURE_RESERVED_PREFIXES, CURATED_PREFIX, parse_reference
from kiln.errors import InvalidDefinition, NotFound, ReadOnly
from kiln.formats.base import (
    RegisteredReference,
    local_path_of,
    pin_git_context,
    resolve_local_inputs,
)
from kiln.workspace import Workspace

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from kiln.accounts import Actor

__all__ = [  # the record types are defined in the model and re-exported for callers of the core
    "EnvironmentRecord",
    "RegisterResult",
    "curated_record",
    "get",
    "list_records",
    "matching_curated",
    "parse_reference",
    "reads_local_inputs",
    "register",
    "row_summary",
    "same_build",
    "set_archived",
    "set_tags",
    "summaries_page",
]
_COLUMNS = {"name", "version", "description", "tags"}


def _stored_json(definition: EnvironmentDefinition) -> str:
    data = definition.model_dump(mode="json", exclude=_COLUMNS, exclude_defaults=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _store_local_inputs(
    workspace: Workspace, definition: EnvironmentDefinition, source_dir: Path
) -> None:
    from kiln.wheels import check_local_wheel

    for entry, digest in definition.python.pip.file_digests.items():
        if parse_pip_entry(entry).kind == "wheel":
            continue  # stored already by `kiln wheel add`
        path = source_dir / local_path_of(entry)
        if path.suffix == ".whl":
            check_local_wheel(path, shown=local_path_of(entry))
        stored = workspace.artifacts.put_file(path)
        if stored != digest:
            raise InvalidDefinition(
                f"{local_path_of(entry)} changed while it was being registered; retry"
            )
    docker = definition.docker
    if docker.context_folder:
        stored = workspace.artifacts.put_tree(source_dir / docker.context_folder)
        if stored != docker.build_context_digest:  # hashed again on purpose: what was stored
            raise InvalidDefinition(
                f"{docker.context_folder} changed while it was being registered; retry"
            )


def _unread_local_inputs(definition: EnvironmentDefinition) -> bool:
    """True when a local file or build context has no digest yet (loaders record them)."""
    pip = definition.python.pip
    unread_files = any(
        parse_pip_entry(e).kind == "path" and e not in pip.file_digests for e in pip.packages
    )
    docker = definition.docker
    return unread_files or bool(docker.context_folder and not docker.build_context_digest)


def reads_local_inputs(definition: EnvironmentDefinition) -> bool:
    """True when what ``register`` stores depends on more than the definition's own files:
    local packages or a build context beside it, wheels stored in the workspace, or a git
    build context (whose ref may name another commit tomorrow)."""
    pip = definition.python.pip
    entries = [*pip.packages, *pip.constraints]
    local = any(parse_pip_entry(e).kind in ("path", "wheel") for e in entries)
    return local or bool(pip.file_digests) or definition.docker.build_context is not None


def _has_local_inputs(definition: EnvironmentDefinition) -> bool:
    return bool(definition.python.pip.file_digests) or definition.docker.context_folder is not None


def _check_stored(workspace: Workspace, definition: EnvironmentDefinition) -> None:
    """Without a source folder, the local inputs must already be in the artifact store."""
    digests = list(definition.python.pip.file_digests.values())
    digests += (
        [definition.docker.build_context_digest or ""] if definition.docker.context_folder else []
    )
    for digest in digests:
        if workspace.artifacts.lookup(digest) is None:
            raise InvalidDefinition(
                "this definition names local files that the workspace does not hold; "
                "register it from the folder that has them"
            )


def _refuse_reserved(name: str) -> None:
    """Names starting with Kiln's or Azure ML's curated prefixes are not for users."""
    for prefix in (CURATED_PREFIX, *AZURE_RESERVED_PREFIXES):
        if not name.startswith(prefix):
            continue
        suggestion = name[len(prefix) :].lstrip("-_.") or "my-env"
        owner = "curated" if prefix == CURATED_PREFIX else "Azure ML's curated"
        refusal = (
            f"`name`: {name!r} uses the reserved prefix {prefix!r} of {owner} environments; "
            f"register it as {suggestion!r} (env.clone('{suggestion}'))"
        )
        equivalent = None if prefix == CURATED_PREFIX else curated.equivalent_of(name)
        if equivalent:
            refusal += f", or start from Kiln's curated {equivalent}"
        raise ReadOnly(refusal)


def register(
    workspace: Workspace,
    definition: EnvironmentDefinition,
    *,
    source_dir: Path | None = None,
    actor: Actor | None = None,
    inputs_checked: bool = False,
) -> RegisterResult:
    """Register ``definition``: same content as an existing version returns that version.
    ``actor`` is the server's user (None: the local user), recorded with the version;
    ``inputs_checked`` when the caller has checked that its local inputs are stored (the
    server, in its artifact store)."""
    # Before a remote workspace hands over: the client that registers is the one that builds,
    # with its own access to the repository (a server keeps the commit it is sent).
    definition = pin_git_context(definition)
    if source_dir is not None and _unread_local_inputs(definition):
        definition = resolve_local_inputs(definition, source_dir)
    if workspace.server_url is not None:
        from kiln import remoteenvs

        if _has_local_inputs(definition):
            if source_dir is None:
                raise InvalidDefinition(
                    "this definition names local files; register it from the folder that has them"
                )
            from kiln.serverinputs import upload_inputs

            upload_inputs(workspace, definition, source_dir)
        return remoteenvs.register(workspace, definition)
    from kiln.registry.engine import write_transaction
    from kiln.registry.queries import insert_version

    _refuse_reserved(definition.name)
    if any(parse_pip_entry(e).kind == "wheel" for e in definition.python.pip.packages):
        from kiln.wheels import resolve_stored_wheels

        definition = resolve_stored_wheels(workspace, definition)
    if _has_local_inputs(definition) and not inputs_checked:
        if source_dir is None:
            _check_stored(workspace, definition)
        else:
            _store_local_inputs(workspace, definition, source_dir)
    with write_transaction(workspace.engine) as connection:
        row, created = insert_version(
            connection,
            name=definition.name,
            version=definition.version,
            definition_digest=definition_digest(definition),
            build_hash=build_hash(definition),
            definition=_stored_json(definition),
            description=definition.description,
            tags=dict(definition.tags),
            created_by=_actor_name(actor),
        )
        if created:
            _audit(connection, actor, "environment.register", f"{row.name}:{row.version}")
    return RegisterResult(_record(row), created)


def _actor_name(actor: Actor | None) -> str:
    from kiln.accounts import local_actor

    return actor.name if actor is not None else local_actor()


def _audit(connection: Connection, actor: Actor | None, action: str, subject: str) -> None:
    """In the write's own transaction: the change and its audit row commit together."""
    from kiln.registry.account_queries import record_action

    record_action(connection, actor=_actor_name(actor), action=action, subject=subject)


def _check_owner(
    connection: Connection, actor: Actor | None, name: str, version: str | None, what: str
) -> None:
    if actor is None:  # a local registry: whoever can open it owns it
        return
    from kiln.accounts import require_owner
    from kiln.registry.queries import list_versions

    rows = list_versions(connection, name=name, latest_only=False, include_archived=True)
    require_owner(actor, [r.created_by for r in rows if version in (None, r.version)], what)


def _record(row: Any) -> EnvironmentRecord:
    return EnvironmentRecord(
        definition_json=row.definition,
        name=row.name,
        version=row.version,
        description=row.description,
        tags=row.tags,
        definition_digest=row.definition_digest,
        build_hash=row.build_hash,
        created_at=row.created_at,
        archived=row.archived,
        created_by=row.created_by,
    )


def row_summary(row: Any) -> dict[str, Any]:
    """The public summary of a registry row (``VersionRow``)."""
    return _record(row).summary()


def get(workspace: Workspace, name: str, version: str | int | None = None) -> EnvironmentRecord:
    """The given version, or the latest unarchived one."""
    version = None if version is None else str(version)  # Environment.get(ws, "x", 2) works too
    if name.startswith(CURATED_PREFIX):
        for definition in curated.definitions():
            if definition.name == name and version in (None, definition.version):
                return curated_record(definition)
        raise NotFound(
            f"no curated environment {name}{':' + version if version else ''}; see `kiln env list`"
        )
    if workspace.server_url is not None:
        from kiln import remoteenvs

        return remoteenvs.get(workspace, name, version)
    from kiln.registry.queries import get_version, names

    with workspace.engine.connect() as connection:
        row = get_version(connection, name=name, version=version)
        known = names(connection) if row is None else []
    if row is None:
        what = f"{name}:{version}" if version else name
        raise NotFound(f"no environment {what} in {workspace.path}; {_did_you_mean(name, known)}")
    return _record(row)


def resolve_reference(workspace: Workspace, reference: RegisteredReference) -> EnvironmentRecord:
    """The registered version a reference-only file names (azureml-core's
    EnvironmentReference), or NotFound naming the file and the reference."""
    try:
        return get(workspace, reference.name, reference.version)
    except NotFound as exc:
        raise NotFound(
            f"{reference.source} refers to the registered environment {reference.reference}: "
            f"{exc.message}"
        ) from None


def _did_you_mean(name: str, known: list[str]) -> str:
    import difflib

    if name in known:  # the name exists: the version does not, or every version is archived
        return f"see `kiln env list --all-versions --archived --search {name}`"
    candidates = known + [d.name for d in curated.definitions()]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else "see `kiln env list`"


def list_records(
    workspace: Workspace,
    *,
    name: str | None = None,
    all_versions: bool = False,
    include_archived: bool = False,
    name_contains: str | None = None,
    tags: dict[str, str | None] | None = None,
    include_curated: bool = True,
) -> list[EnvironmentRecord]:
    if workspace.server_url is not None:
        from kiln import remoteenvs

        return remoteenvs.list_records(
            workspace,
            name=name,
            all_versions=all_versions,
            include_archived=include_archived,
            name_contains=name_contains,
            tags=tags,
            include_curated=include_curated,
            include_anonymous=True,
        )
    from kiln.registry.queries import list_versions

    with workspace.engine.connect() as connection:
        rows = list_versions(
            connection,
            name=name,
            latest_only=not all_versions,
            include_archived=include_archived,
            name_contains=name_contains,
            tags=tags,
        )
    records = [_record(row) for row in rows]
    if include_curated:
        records = list(matching_curated(name, name_contains, tags)) + records
    return records


def matching_curated(
    name: str | None, name_contains: str | None, tags: dict[str, str | None] | None
) -> list[EnvironmentRecord]:
    found = []
    for definition in curated.definitions():
        if name is not None and definition.name != name:
            continue
        if name_contains and name_contains.lower() not in definition.name.lower():
            continue
        if any(
            k not in definition.tags or v not in (None, definition.tags[k])
            for k, v in (tags or {}).items()
        ):
            continue
        found.append(curated_record(definition))
    return found


def summaries_page(
    workspace: Workspace, *, all_versions: bool, limit: int, offset: int, **filters: Any
) -> tuple[int, list[dict[str, Any]]]:
    """(how many registered versions match, the summaries of one page of them), read in one
    transaction; ``filters`` are ``queries.count_versions``'. ``envlist.list_page`` without
    the fast path."""
    from kiln.registry.queries import count_versions, list_versions

    filters["latest_only"] = not all_versions
    with workspace.engine.connect() as connection, connection.begin():
        total = count_versions(connection, **filters)
        rows = list_versions(connection, **filters, limit=limit, offset=offset) if limit else []
    return total, [row_summary(row) for row in rows]


def same_build(workspace: Workspace, record: EnvironmentRecord) -> list[str]:
    """Other versions (any name) whose build hash equals this one's: they share one build."""
    if workspace.server_url is not None:
        from kiln import remoteenvs

        shared: list[str] = remoteenvs.detail(workspace, record.name, record.version)[
            "same_build_as"
        ]
        return shared
    from kiln.registry.queries import list_versions

    with workspace.engine.connect() as connection:
        rows = list_versions(
            connection, latest_only=False, include_archived=True, build_hash=record.build_hash
        )
    others = [
        f"{r.name}:{r.version}"
        for r in rows
        if (r.name, r.version) != (record.name, record.version)
    ]
    return others + curated.sharing_build(record.build_hash, besides=record.name)


def set_archived(
    workspace: Workspace,
    name: str,
    version: str | None,
    *,
    archived: bool,
    actor: Actor | None = None,
) -> int:
    from kiln.registry.engine import write_transaction
    from kiln.registry.queries import set_archived as update_archived

    if name.startswith(CURATED_PREFIX):
        raise ReadOnly(f"{name} is curated and cannot be archived or restored")
    if workspace.server_url is not None:
        from kiln import remoteenvs

        return remoteenvs.set_archived(workspace, name, version, archived=archived)
    reference = f"{name}:{version}" if version else name
    with write_transaction(workspace.engine) as connection:
        _check_owner(connection, actor, name, version, reference)
        changed = update_archived(connection, name=name, version=version, archived=archived)
        if changed:
            action = "environment.archive" if archived else "environment.restore"
            _audit(connection, actor, action, reference)
    if changed == 0:
        raise NotFound(
            f"no environment {name}{':' + version if version else ''} in {workspace.path}"
        )
    return changed


def set_tags(
    workspace: Workspace,
    name: str,
    version: str | None,
    *,
    add: dict[str, str],
    remove: list[str],
    actor: Actor | None = None,
) -> EnvironmentRecord:
    from kiln.registry.engine import write_transaction
    from kiln.registry.queries import get_version
    from kiln.registry.queries import set_tags as update_tags

    if name.startswith(CURATED_PREFIX):
        raise ReadOnly(f"{name} is curated; clone it to change its tags")
    if workspace.server_url is not None:
        from kiln import remoteenvs

        return remoteenvs.set_tags(workspace, name, version, add=add, remove=remove)
    with write_transaction(workspace.engine) as connection:
        row = get_version(connection, name=name, version=version)
        if row is None:
            raise NotFound(
                f"no environment {name}{':' + version if version else ''} in {workspace.path}"
            )
        reference = f"{row.name}:{row.version}"
        _check_owner(connection, actor, name, row.version, reference)
        update_tags(connection, version_id=row.id, add=add, remove=remove)
        _audit(connection, actor, "environment.tag", reference)
        row = get_version(connection, name=name, version=row.version)
    return _record(row)


def registered_by(workspace: Workspace, name: str, version: str) -> str | None:
    """Who registered ``name:version``: a server user, or ``local:USER``; None for a curated
    version, a remote workspace, or a version registered before accounts existed."""
    if name.startswith(CURATED_PREFIX) or workspace.server_url is not None:
        return None
    from kiln.registry.queries import get_version

    with workspace.engine.connect() as connection:
        row = get_version(connection, name=name, version=version)
    return None if row is None else row.created_by
