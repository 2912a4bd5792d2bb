"""A definition's local inputs (wheel files, a build context folder) on a team server.

Registering against a server uploads them to the server's artifact store; building fetches them
back into this machine's cache. A file travels as itself, by sha256. A folder travels as its
files plus its manifest (kiln.environment.files.tree_manifest), whose sha256 is the folder's tree
digest: the server checks that it holds a folder exactly as it checks a file, and a client
rebuilds the folder from the manifest and checks every file it fetched.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.artifacts import ArtifactStore
from kiln.environment.files import parse_tree_manifest, tree_manifest
from kiln.environment.packages import parse_pip_entry
from kiln.errors import InvalidDefinition, NotFound
from kiln.private import private_folder

if TYPE_CHECKING:
    from kiln.blobstores.base import BlobStore
    from kiln.environment.definition import EnvironmentDefinition
    from kiln.httpclient import ServerClient
    from kiln.workspace import Workspace


def _client(workspace: Workspace) -> ServerClient:
    from kiln.remoteenvs import client

    return client(workspace)


def upload_inputs(
    workspace: Workspace, definition: EnvironmentDefinition, source_dir: Path
) -> None:
    """Send the local files ``definition`` names (their digests already recorded) to the
    server's store; only what the server lacks crosses the network."""
    from kiln.formats.base import local_path_of
    from kiln.remoteartifacts import upload
    from kiln.wheels import check_local_wheel

    client = _client(workspace)
    for entry, digest in definition.python.pip.file_digests.items():
        if parse_pip_entry(entry).kind != "path":
            continue
        path = source_dir / local_path_of(entry)
        if path.suffix == ".whl":
            check_local_wheel(path, shown=local_path_of(entry))
        if upload(client, path) != digest:
            raise InvalidDefinition(
                f"{local_path_of(entry)} changed while it was being sent; retry"
            )
    docker = definition.docker
    if docker.context_folder and docker.build_context_digest:
        manifest, files = tree_manifest(source_dir / docker.context_folder)
        for file in files:
            if upload(client, file.path) != file.digest:
                raise InvalidDefinition(
                    f"{docker.build_context}/{file.relative} changed while it was being sent; retry"
                )
        # The manifest goes last: once the server holds it, it holds every file it names.
        if upload(client, manifest) != docker.build_context_digest:
            raise InvalidDefinition(
                f"{docker.build_context} changed while it was being sent; retry"
            )


@cache
def _local_copies(root: Path) -> ArtifactStore:
    return ArtifactStore(private_folder(root / "server-artifacts"))


Download = Callable[[str, Path], object]
"""Writes the blob with this sha256 to the path, checked; NotFound when the store lacks it."""


def fetch(workspace: Workspace, digest: str, *, folder: bool) -> Path | None:
    """This machine's copy of a file (or, with ``folder``, a folder) the server's store holds
    under ``digest``; None when the server holds no such thing. Kept in the build cache, so it is
    fetched once; every byte is checked against its sha256 on the way in."""
    from kiln.remoteartifacts import download

    client = _client(workspace)
    return _fetch_into(
        _local_copies(workspace.cache_root),
        digest,
        folder=folder,
        download=lambda blob, target: download(client, blob, target),
    )


def stage_from_store(
    workspace: Workspace, store: BlobStore, definition: EnvironmentDefinition
) -> None:
    """On the server host: the local inputs of ``definition`` copied from the server's artifact
    store (S3, say) into the workspace's own, where a build on this host looks for them (the
    web UI's Rebuild). What is there already is not fetched again; every byte is checked."""
    from kiln.artifacts import publish_chunks
    from kiln.blobstores.base import read_chunks

    def from_store(digest: str, target: Path) -> None:
        if store.size(digest) is None:
            raise NotFound(f"the server's artifact store does not hold {digest}")
        blob = store.open(digest)
        try:
            publish_chunks(
                read_chunks(blob, 1 << 20), lambda _found: target, staging=target.parent,
                expected=digest, durable=False,
            )  # fmt: skip
        finally:
            blob.close()

    docker = definition.docker
    wanted = [(digest, False) for digest in definition.python.pip.file_digests.values()]
    if docker.context_folder and docker.build_context_digest:
        wanted.append((docker.build_context_digest, True))
    for digest, folder in wanted:
        _fetch_into(workspace.artifacts, digest, folder=folder, download=from_store)


def _fetch_into(
    local: ArtifactStore, digest: str, *, folder: bool, download: Download
) -> Path | None:
    """``local``'s copy of the file or folder ``digest``, fetched with ``download`` when it has
    none (a folder as its manifest, then each file it lacks); None when the source lacks it."""
    found = local.lookup(digest, folder=folder)
    if found is not None:
        return found
    private_folder(local.root)
    with tempfile.TemporaryDirectory(dir=local.root, prefix=".fetch-") as scratch:
        first = Path(scratch) / "blob"
        try:
            download(digest, first)
        except NotFound:
            return None
        if not folder:
            local.put_file(first)
            return local.lookup(digest, folder=False)
        entries = parse_tree_manifest(first.read_bytes())
        if entries is None:
            return None  # a file, not a folder: the caller says what it expected
        tree = Path(scratch) / "tree"
        for relative, executable, file_digest in entries:
            target = tree / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            cached = local.lookup(file_digest, folder=False)
            if cached is not None:
                shutil.copyfile(cached, target)
            else:
                download(file_digest, target)
            target.chmod(0o755 if executable else 0o644)
        if local.put_tree(tree) != digest:  # cannot differ once every file was checked
            raise InvalidDefinition(f"the folder fetched as {digest[:12]} does not match it")
    return local.lookup(digest, folder=True)


_LARGEST_MANIFEST = 16 * 1024 * 1024


def check_stored(definition: EnvironmentDefinition, store: BlobStore) -> None:
    """On the server: every local input a registered definition names is in ``store`` (a
    client's register uploads them first), the folder's files included; else one line."""
    pip = definition.python.pip
    paths = [e for e in pip.packages if parse_pip_entry(e).kind == "path"]
    if sorted(paths) != sorted(pip.file_digests):
        raise InvalidDefinition(
            "`python.pip.file_digests` must name the sha256 of each local file in "
            "python.pip.packages; register with the kiln client, which computes them"
        )
    missing = [entry for entry, digest in pip.file_digests.items() if store.size(digest) is None]
    docker = definition.docker
    if docker.context_folder:  # a git URL carries no files: the builder fetches its commit
        if docker.build_context_digest is None:
            raise InvalidDefinition(
                "`docker.build_context_digest` is missing; register with the kiln client, "
                "which uploads the folder and computes it"
            )
        size = store.size(docker.build_context_digest)
        entries = None
        if size is not None and size <= _LARGEST_MANIFEST:
            from kiln.blobstores.base import read_chunks

            blob = store.open(docker.build_context_digest)
            entries = parse_tree_manifest(b"".join(read_chunks(blob, 1 << 20)))
        if entries is None or any(store.size(digest) is None for _, _, digest in entries):
            missing.append(docker.context_folder)
    if missing:
        raise InvalidDefinition(
            f"the server's artifact store does not hold {', '.join(missing)}; register with the "
            "kiln client, which uploads local files and build contexts first"
        )
