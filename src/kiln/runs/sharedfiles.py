"""A run's snapshot and outputs on a team server: in its artifact store, so any machine with a
token can download or reproduce the run. The machine that runs it uploads the files the store
lacks and a manifest of them (kiln/filetrees.py); the server records the manifest only after
checking it against the store, and every machine that fetches checks each file again.

On a folder workspace nothing here applies: the files are in the workspace's own store.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.compute.runfolder import collect_outputs, local_side
from kiln.errors import NotFound
from kiln.runs.snapshot import FIELD as SNAPSHOT_FIELD

if TYPE_CHECKING:
    from kiln.blobstores.base import BlobStore
    from kiln.filetrees import FileEntry
    from kiln.httpclient import ServerClient
    from kiln.runs.store import RunRecord
    from kiln.workspace import Workspace

OUTPUTS = "outputs"


def listing(entries: Iterable[FileEntry]) -> list[dict[str, Any]]:
    """The run record's ``outputs``: each file's name as ``run download`` lists it, and size."""
    return [{"name": f"{OUTPUTS}/{e.path}", "size": e.size} for e in entries]


def _client(workspace: Workspace) -> ServerClient:
    from kiln.registry.server_runs import client_for

    assert workspace.server_url is not None
    return client_for(workspace.server_url)


def share_snapshot(workspace: Workspace, source: Path, digest: str) -> str | None:
    """The manifest of the snapshot ``digest`` (taken from ``source``) in the server's store,
    uploaded now; None on a folder workspace."""
    if workspace.server_url is None:
        return None
    from kiln.remotetrees import share

    return share(_client(workspace), source, field=SNAPSHOT_FIELD, expected_tree=digest).manifest


def store_outputs(workspace: Workspace, outputs: Path) -> dict[str, Any]:
    """Store the run's ``outputs`` folder; the run record's fields for it (none if empty)."""
    if workspace.server_url is None:
        return collect_outputs(workspace, outputs)
    if not outputs.is_dir():
        return {}
    from kiln.remotetrees import share

    shared = share(_client(workspace), outputs, field=OUTPUTS)
    if not shared.entries:
        return {}
    return {
        "outputs_digest": shared.tree_digest,
        "outputs": listing(shared.entries),
        "outputs_manifest": shared.manifest,
    }


def _entries(workspace: Workspace, manifest: str, tree_digest: str, what: str) -> list[FileEntry]:
    from kiln.remotetrees import manifest_entries

    cache = local_side(workspace).artifacts
    return manifest_entries(_client(workspace), cache, manifest, tree_digest=tree_digest, what=what)


def output_file(
    workspace: Workspace, record: RunRecord, name: str, store: BlobStore | None = None
) -> Path | None:
    """This machine's checked copy of the run's output ``name`` from the server's store; None
    when the store does not keep the run's outputs."""
    if not record.outputs_manifest or not record.outputs_digest:
        return None
    if workspace.server_url is None:
        return _served_output(workspace, record, name, store)
    from kiln.remotetrees import cached_blob

    what = f"the outputs of run {record.id}"
    for entry in _entries(workspace, record.outputs_manifest, record.outputs_digest, what):
        if f"{OUTPUTS}/{entry.path}" == name:
            return cached_blob(_client(workspace), local_side(workspace).artifacts, entry.sha256)
    return None


def _served_output(
    workspace: Workspace, record: RunRecord, name: str, store: BlobStore | None
) -> Path | None:
    """On the server host (its web UI): the file in the workspace's own store, which is the
    artifact store unless the server keeps artifacts elsewhere (S3): then ``store``, from which
    the manifest and the file are copied into the workspace's own, checked. The server checked
    the manifest against the store before recording it."""
    from kiln.filetrees import decode

    local = workspace.artifacts

    def here(digest: str) -> Path | None:
        if not local.blob_path(digest).exists():
            if store is None or store.size(digest) is None:
                return None
            from kiln.blobstores.base import read_chunks

            blob = store.open(digest)
            try:
                local.put_chunks(read_chunks(blob, 1 << 20), expected=digest)
            finally:
                blob.close()
        return local.blob_path(digest)

    manifest = here(str(record.outputs_manifest))
    if manifest is None:
        return None
    for entry in decode(manifest.read_bytes(), what=f"the outputs of run {record.id}"):
        if f"{OUTPUTS}/{entry.path}" == name:
            return here(entry.sha256)
    return None


@contextlib.contextmanager
def outputs_folder(workspace: Workspace, record: RunRecord) -> Iterator[Path]:
    """The run's outputs as a folder while the block runs: the workspace's own copy, or one
    fetched (and checked) from the server's store into a temporary folder."""
    if workspace.server_url is None or not record.outputs_manifest:
        tree = local_side(workspace).artifacts.lookup(str(record.outputs_digest))
        if tree is None:
            raise NotFound(f"the outputs of run {record.id} are not in this workspace's store")
        yield tree
        return
    from kiln.remotetrees import fetch_tree

    what = f"the outputs of run {record.id}"
    entries = _entries(workspace, record.outputs_manifest, str(record.outputs_digest), what)
    staging = Path(tempfile.mkdtemp(dir=local_side(workspace).root, prefix=".outputs-"))
    try:
        fetch_tree(
            _client(workspace), local_side(workspace).artifacts, entries, staging / "outputs"
        )
        yield staging / "outputs"
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_snapshot(workspace: Workspace, record: RunRecord) -> bool:
    """Make sure this machine's store holds the run's snapshot, fetched from the server's store
    if need be; False when neither has it."""
    cache = local_side(workspace).artifacts
    if cache.has_tree(record.snapshot_digest):
        return True
    if workspace.server_url is None or not record.snapshot_manifest:
        return False
    from kiln.remotetrees import fetch_tree

    what = f"the snapshot of run {record.id}"
    entries = _entries(workspace, record.snapshot_manifest, record.snapshot_digest, what)
    staging = Path(tempfile.mkdtemp(dir=local_side(workspace).root, prefix=".snapshot-"))
    try:
        fetch_tree(_client(workspace), cache, entries, staging / "files")
        # Checked file by file against the tree digest already: no need to hash it again.
        cache.put_tree(staging / "files", record.snapshot_digest, field=SNAPSHOT_FIELD)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True
