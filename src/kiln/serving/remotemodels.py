"""Models on a team server, from a client: the content goes to the server's artifact store (a
file as one blob, a folder as its files and a manifest), the record to the server, which checks
the content is there and records who registered it from the token. Downloads come back through
the store, every file checked, kept by sha256 in this machine's own store."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kiln.compute.runfolder import local_side
from kiln.errors import InvalidRequest
from kiln.serving.modelrecords import Lineage, ModelRecord, check_file_name

if TYPE_CHECKING:
    from kiln.httpclient import ServerClient
    from kiln.workspace import Workspace

RECORDS = "/model-records"


def _client(workspace: Workspace) -> ServerClient:
    from kiln.registry.server_runs import client_for

    assert workspace.server_url is not None
    return client_for(workspace.server_url)


def document_of(record: ModelRecord) -> dict[str, Any]:
    """A model record as the API sends it."""
    return dataclasses.asdict(record)


def _record_of(document: dict[str, Any]) -> ModelRecord:
    return ModelRecord(**document)


def register(
    workspace: Workspace, path: Path, name: str, file_name: str, lineage: Lineage
) -> ModelRecord:
    """Upload what the store lacks of ``path``, then ask the server to record the next version."""
    from kiln import remoteartifacts
    from kiln.remotetrees import share

    client = _client(workspace)
    body: dict[str, Any] = {"name": name, "file_name": file_name, **lineage._asdict()}
    if path.is_dir():
        shared = share(client, path, field="model_path")
        size = sum(e.size for e in shared.entries)
        body.update(kind="folder", digest=shared.tree_digest, size=size, manifest=shared.manifest)
    elif path.is_file():
        digest = remoteartifacts.upload(client, path)
        body.update(kind="file", digest=digest, size=path.stat().st_size, manifest=None)
    else:
        raise InvalidRequest(f"`model_path`: {path} is neither a file nor a folder")
    return _record_of(client.request("POST", RECORDS, json=body))


def get(workspace: Workspace, name: str, version: int | None) -> ModelRecord:
    path = f"{RECORDS}/{quote(name, safe='')}/{version or 'latest'}"
    return _record_of(_client(workspace).request("GET", path))


def list_models(workspace: Workspace, name: str | None) -> list[ModelRecord]:
    params = {} if name is None else {"name": name}
    return [_record_of(d) for d in _client(workspace).request("GET", RECORDS, params=params)]


def download(workspace: Workspace, record: ModelRecord, directory: Path) -> Path:
    """The model under ``directory`` by its own name, every file checked against its sha256
    (a folder's manifest against the record's tree digest) before any is written there."""
    from kiln.artifacts import publish
    from kiln.remotetrees import cached_blob, fetch_tree, manifest_entries

    client, cache = _client(workspace), local_side(workspace).artifacts
    target = directory / check_file_name(record.file_name)  # a server's answer, checked too
    directory.mkdir(parents=True, exist_ok=True)
    if record.kind == "file":
        publish(cached_blob(client, cache, record.digest), target)
        return target
    what = f"the files of model {record.reference}"
    if record.manifest is None:
        raise InvalidRequest(f"{what}: the server keeps no manifest of them; register it again")
    entries = manifest_entries(client, cache, record.manifest, tree_digest=record.digest, what=what)
    staging = Path(tempfile.mkdtemp(dir=directory, prefix=".model-"))
    try:
        fetch_tree(client, cache, entries, staging / "files")
        shutil.copytree(staging / "files", target, dirs_exist_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
