"""A folder's files as a list kept in the artifact store: each kept file's path, sha256, size and
mode (a *manifest*), the files themselves stored as blobs by their sha256.

A manifest is checked against the tree digest the rest of Kiln already records for the folder
(a run's snapshot and outputs, a model's files): the digest is a function of the paths,
executable bits and contents, so a manifest that lies about any file does not match it. Whoever
reads one checks that first, then each file against its sha256.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, NamedTuple

from kiln.environment.files import context_files, file_digest, is_executable, tree_line
from kiln.errors import InvalidRequest

if TYPE_CHECKING:
    from kiln.blobstores.base import BlobStore

FORMAT = "kiln.file-tree/1"
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
EXECUTABLE, PLAIN = 0o755, 0o644
_SHA256 = re.compile(r"[0-9a-f]{64}")


class FileEntry(NamedTuple):
    path: str  # posix, relative to the folder
    sha256: str
    size: int
    mode: int  # EXECUTABLE or PLAIN


def entries_of(folder: Path, *, field: str) -> list[tuple[FileEntry, Path]]:
    """The kept files of ``folder`` (the tree digest's rules), sorted by path, each with where
    it is on this machine."""
    found = []
    for rel, path in context_files(folder, field=field):
        mode = EXECUTABLE if is_executable(path) else PLAIN
        found.append((FileEntry(rel, file_digest(path), path.stat().st_size, mode), path))
    return found


def tree_digest_of(entries: Iterable[FileEntry]) -> str:
    """The tree digest of the folder these entries list (``files.tree_digest``'s value)."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(
            tree_line(entry.path, executable=entry.mode == EXECUTABLE, sha256=entry.sha256)
        )
    return digest.hexdigest()


def encode(entries: Iterable[FileEntry]) -> bytes:
    """The manifest's bytes: canonical JSON, so one folder always has one manifest digest."""
    files = [e._asdict() for e in entries]
    return json.dumps({"format": FORMAT, "files": files}, sort_keys=True).encode()


def _bad(what: str, detail: str) -> InvalidRequest:
    return InvalidRequest(f"{what}: {detail}; it was not made by Kiln, upload the files again")


def _entry(raw: object, what: str) -> FileEntry:
    if not isinstance(raw, dict) or set(raw) != set(FileEntry._fields):
        raise _bad(what, f"an entry is not {{{', '.join(FileEntry._fields)}}}")
    path, sha256, size, mode = (raw[k] for k in FileEntry._fields)
    pure = PurePosixPath(path) if isinstance(path, str) else None
    if (
        pure is None
        or not path
        or "\0" in path
        or "\\" in path
        or pure.is_absolute()
        or pure.as_posix() != path
        or any(part in ("", ".", "..") for part in pure.parts)
    ):
        raise _bad(what, f"`path` {path!r} is not a relative path inside the folder")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise _bad(what, f"`sha256` of {path} is not a sha256 digest")
    if type(size) is not int or size < 0 or mode not in (EXECUTABLE, PLAIN):
        raise _bad(what, f"`size` or `mode` of {path} is not valid")
    return FileEntry(path, sha256, size, mode)


def decode(data: bytes, *, what: str) -> list[FileEntry]:
    """The entries of manifest bytes, refused (naming ``what``) unless Kiln could have made them."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad(what, "it is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _bad(what, f"it is not a {FORMAT} manifest")
    raw = document.get("files")
    if not isinstance(raw, list):
        raise _bad(what, "`files` is not a list")
    entries = [_entry(item, what) for item in raw]
    paths = [e.path for e in entries]
    if paths != sorted(set(paths)):
        raise _bad(what, "its paths are not sorted and unique")
    return entries


def check_stored(
    store: BlobStore, manifest: str, *, tree_digest: str, what: str
) -> list[FileEntry]:
    """The manifest ``manifest`` as the store holds it, checked before a record may name it: it
    lists the folder whose tree digest is ``tree_digest`` and the store holds every file it
    names, at its size. A run never shows files the store does not have."""
    from kiln.blobstores.base import check_digest, read_chunks

    size = store.size(check_digest(manifest))
    if size is None:
        raise InvalidRequest(f"{what}: the artifact store has no manifest {manifest}; upload it")
    if size > MAX_MANIFEST_BYTES:
        raise _bad(what, f"its manifest is over {MAX_MANIFEST_BYTES // 1024**2} MiB")
    data = b"".join(read_chunks(store.open(manifest), 1024 * 1024))
    if hashlib.sha256(data).hexdigest() != manifest:  # the store's own promise, checked anyway
        raise _bad(what, f"the stored manifest does not hash to {manifest}")
    entries = decode(data, what=what)
    if tree_digest_of(entries) != tree_digest:
        raise _bad(what, f"the manifest does not list the folder with tree digest {tree_digest}")
    for entry in entries:
        if store.size(entry.sha256) != entry.size:
            raise InvalidRequest(
                f"{what}: the artifact store lacks {entry.path} (sha256 {entry.sha256}); "
                "upload the files before naming them"
            )
    return entries
