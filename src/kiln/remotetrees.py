"""Folders through a team server's artifact store, from a client: ``share`` uploads a folder's
files the store lacks and then its manifest (kiln/filetrees.py); ``fetch_file``/``fetch_tree``
bring them back on any machine, each file checked against its sha256 and the manifest against
the tree digest the record names. Downloads are kept in this machine's own artifact store by
sha256, so a file is fetched once per machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from kiln import remoteartifacts
from kiln.errors import Conflict, InvalidRequest
from kiln.filetrees import FileEntry, decode, encode, entries_of, tree_digest_of

if TYPE_CHECKING:
    from kiln.artifacts import ArtifactStore
    from kiln.httpclient import ServerClient


class Shared(NamedTuple):
    tree_digest: str
    manifest: str  # the manifest's sha256, for the record
    entries: list[FileEntry]


def share(
    client: ServerClient, folder: Path, *, field: str, expected_tree: str | None = None
) -> Shared:
    """Upload the kept files of ``folder`` that the store lacks, then its manifest. With
    ``expected_tree`` (a digest taken earlier) a folder that changed since is refused."""
    found = entries_of(folder, field=field)
    entries = [entry for entry, _ in found]
    tree = tree_digest_of(entries)
    if expected_tree is not None and tree != expected_tree:
        raise Conflict(
            f"`{field}`: {folder} changed while it was being stored; run the command again"
        )
    lacking = remoteartifacts.missing(client, {e.sha256 for e in entries})
    for entry, path in found:
        if entry.sha256 in lacking:
            remoteartifacts.upload(client, path, known=(entry.sha256, entry.size))
            lacking.discard(entry.sha256)  # a file held twice is sent once
    manifest = remoteartifacts.upload(client, encode(entries))
    return Shared(tree, manifest, entries)


def cached_blob(client: ServerClient, cache: ArtifactStore, digest: str) -> Path:
    """The blob ``digest`` in this machine's store, downloaded (and checked) if missing."""
    blob = cache.blob_path(digest)
    if not blob.exists():
        remoteartifacts.download(client, digest, blob)
    return blob


def manifest_entries(
    client: ServerClient, cache: ArtifactStore, manifest: str, *, tree_digest: str, what: str
) -> list[FileEntry]:
    """The entries of the manifest ``manifest``, refused unless they list the folder whose tree
    digest the record names (a manifest swapped on the server is caught here)."""
    entries = decode(cached_blob(client, cache, manifest).read_bytes(), what=what)
    if tree_digest_of(entries) != tree_digest:
        raise InvalidRequest(
            f"{what}: the server's manifest does not list the files whose tree digest is "
            f"{tree_digest}; nothing was written, ask the server's admin to check its store"
        )
    return entries


def fetch_tree(
    client: ServerClient, cache: ArtifactStore, entries: list[FileEntry], destination: Path
) -> None:
    """The folder the entries list, made beside ``destination`` (which must not exist) and
    renamed into place whole: a download cut off midway leaves nothing there."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".fetch-"))
    try:
        for entry in entries:
            target = staging / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached_blob(client, cache, entry.sha256), target)
            target.chmod(entry.mode)
        os.replace(staging, destination)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
