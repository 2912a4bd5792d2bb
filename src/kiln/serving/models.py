"""Registered models: a file or a folder kept in the artifact store by content, with versions
(every registration is the next version, as in Azure ML) and lineage to the run that produced
it and that run's environment."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from kiln.accounts import actor_name
from kiln.errors import InvalidRequest, NotFound
from kiln.registry import model_queries as queries
from kiln.registry.account_queries import record_action
from kiln.registry.engine import write_transaction
from kiln.serving.modelrecords import Lineage, ModelRecord, Stored, check_file_name
from kiln.workspace import Workspace

if TYPE_CHECKING:
    from kiln.accounts import Actor

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def _record(row: dict[str, Any]) -> ModelRecord:
    return ModelRecord(**{**row, "tags": json.loads(row["tags"]), "version": int(row["version"])})


def parse_model_reference(text: str) -> tuple[str, int | None]:
    name, _, version = text.partition(":")
    if not version or version == "latest":
        return name, None
    if not version.isdigit():
        raise InvalidRequest(f"model version {version!r} in {text!r} is not a number (NAME:3)")
    return name, int(version)


def check_name(name: str, *, field: str = "model_name") -> str:
    if not _NAME.fullmatch(name or ""):
        raise InvalidRequest(
            f"`{field}`: {name!r} is not valid; use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (e.g. 'iris-classifier')"
        )
    return name


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def register(
    workspace: Workspace,
    path: Path,
    name: str,
    *,
    tags: dict[str, str] | None = None,
    description: str | None = None,
    run_id: str | None = None,
    environment: tuple[str, str] | None = None,
    file_name: str | None = None,
    actor: Actor | None = None,
) -> ModelRecord:
    """Store ``path`` (a file or a folder) and record it as the next version of ``name``
    (``file_name``: what to call it where it is downloaded, default its own name), with who
    registered it (``actor``, else the local user) and an audit row."""
    check_name(name)
    if not path.exists():
        raise InvalidRequest(f"`model_path`: {path} does not exist")
    lineage = Lineage(tags, description, run_id, environment)
    if workspace.server_url is not None:  # the server records it, with the token's user
        from kiln.serving import remotemodels

        return remotemodels.register(workspace, path, name, file_name or path.name, lineage)
    if path.is_dir():
        digest = workspace.artifacts.put_tree(path, field="model_path")
        stored = Stored(digest, "folder", file_name or path.name, _size(path))
    elif path.is_file():
        stored = Stored(
            workspace.artifacts.put_file(path), "file", file_name or path.name, _size(path)
        )
    else:
        raise InvalidRequest(f"`model_path`: {path} is neither a file nor a folder")
    return record(workspace, name, stored, lineage, actor=actor)


def record(
    workspace: Workspace, name: str, stored: Stored, lineage: Lineage, *, actor: Actor | None
) -> ModelRecord:
    """Record content already in the store as the next version of ``name``, with who
    registered it (``actor``, else the local user) and an audit row, in one transaction."""
    with write_transaction(workspace.engine) as connection:
        version = queries.insert_next_version(
            connection,
            name=check_name(name),
            digest=stored.digest,
            kind=stored.kind,
            file_name=check_file_name(stored.file_name),
            size=stored.size,
            description=lineage.description,
            tags=json.dumps(dict(lineage.tags or {}), sort_keys=True),
            run_id=lineage.run_id,
            env_name=lineage.environment[0] if lineage.environment else None,
            env_version=lineage.environment[1] if lineage.environment else None,
            created_at=time.time(),
            created_by=actor_name(actor),
            manifest=stored.manifest,
        )
        if version is not None:  # in the same transaction: both commit or neither
            record_action(
                connection,
                actor=actor_name(actor),
                action="model.register",
                subject=f"{name}:{version}",
            )
    if version is None:
        raise InvalidRequest(f"could not register {name}: too many concurrent registrations")
    return get(workspace, name, version)


def get(workspace: Workspace, name: str, version: int | None = None) -> ModelRecord:
    if workspace.server_url is not None:
        from kiln.serving import remotemodels

        return remotemodels.get(workspace, name, version)
    with workspace.engine.connect() as connection:
        row = queries.get_model(connection, name=name, version=version)
    if row is None:
        what = f"{name}:{version}" if version else name
        raise NotFound(f"no model {what} in {workspace.path}; see `kiln model list`")
    return _record(row)


def list_models(workspace: Workspace, name: str | None = None) -> list[ModelRecord]:
    if workspace.server_url is not None:
        from kiln.serving import remotemodels

        return remotemodels.list_models(workspace, name)
    with workspace.engine.connect() as connection:
        rows = queries.list_models(connection, name=name)
    return [_record(r) for r in rows]


def download(workspace: Workspace, record: ModelRecord, directory: Path) -> Path:
    """Copy the model into ``directory`` under its own name; returns the copy's path."""
    if workspace.server_url is not None:
        from kiln.serving import remotemodels

        return remotemodels.download(workspace, record, directory)
    stored = workspace.artifacts.lookup(record.digest)
    if stored is None:
        raise NotFound(f"the content of model {record.reference} is missing from the workspace")
    target = directory / record.file_name
    directory.mkdir(parents=True, exist_ok=True)
    if record.kind == "folder":
        shutil.copytree(stored, target, dirs_exist_ok=True)
    else:
        shutil.copyfile(stored, target)
    return target


def register_from_run(
    workspace: Workspace,
    run_id: str,
    model_path: str,
    name: str,
    *,
    tags: dict[str, str] | None = None,
    description: str | None = None,
    actor: Actor | None = None,
) -> ModelRecord:
    """Register a file or folder from a run's outputs (``outputs/model.pkl``), keeping lineage."""
    from kiln.runs.submission import get as get_run

    run = get_run(workspace, run_id)
    wanted = PurePosixPath(model_path).as_posix().rstrip("/")
    names = [o["name"] for o in run.outputs]
    if not run.outputs_digest or not any(n == wanted or n.startswith(wanted + "/") for n in names):
        raise InvalidRequest(
            f"`model_path`: run {run_id} has no output {wanted!r}; its files: "
            f"{', '.join(names) or 'none'}"
        )
    from kiln.runs.sharedfiles import outputs_folder

    with outputs_folder(workspace, run) as tree:
        source = tree if wanted == "outputs" else tree / wanted.removeprefix("outputs/")
        return register(
            workspace,
            source,
            name,
            tags=tags,
            description=description,
            run_id=run_id,
            environment=(run.env_name, run.env_version),
            file_name=PurePosixPath(wanted).name,  # not the store's name for the extracted folder
            actor=actor,
        )
