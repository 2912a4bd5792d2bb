"""A content-addressed blob store: files by sha256, folders as deterministic tarballs by the
tree digest of their kept files. Writes go to a temporary name and are renamed into place, so
a blob that exists is complete."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from kiln.environment.files import context_files, file_digest, is_executable, tree_digest
from kiln.errors import KilnError
from kiln.private import private_folder

CHUNK = 1024 * 1024


class DigestMismatch(KilnError):
    """Bytes that do not hash to the sha256 they were sent or stored under; nothing was kept."""

    exit_code = 2
    status = 400

    def __init__(
        self,
        expected: str,
        found: str,
        *,
        what: str = "the upload",
        fix: str = "nothing was stored: send the file again",
    ) -> None:
        super().__init__(
            f"{what} does not match sha256 {expected} (its bytes hash to {found}); {fix}"
        )


@contextmanager
def _staged(folder: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A temporary file in ``folder`` (made private if missing), removed unless the caller
    renamed it away before the block ended."""
    private_folder(folder)
    handle, name = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            yield out, temporary
    finally:
        temporary.unlink(missing_ok=True)


def publish(source: Path | bytes, final: Path) -> None:
    """Write ``source`` (a file's content or bytes) to ``final`` atomically: a temporary name in
    the same folder, flushed to disk, then renamed. A file that exists is complete."""
    with _staged(final.parent) as (out, temporary):
        if isinstance(source, bytes):
            out.write(source)
        else:
            with source.open("rb") as data:
                shutil.copyfileobj(data, out)
        out.flush()
        os.fsync(out.fileno())
        os.replace(temporary, final)


def publish_chunks(
    chunks: Iterable[bytes],
    final: Callable[[str], Path],
    *,
    staging: Path,
    expected: str | None = None,
    mismatch: Callable[[str, str], DigestMismatch] = DigestMismatch,
    durable: bool = True,
) -> str:
    """Write ``chunks`` to a temporary file in ``staging`` while hashing them, then rename it to
    ``final(sha256)`` (same file system as ``staging``) and return the sha256. With ``expected``
    a different digest raises ``mismatch(expected, found)``; then, or when ``chunks`` raises midway, nothing
    is left behind, so a file that exists under its digest always holds those bytes.
    ``durable`` flushes the file to disk before the rename (a store of record); a copy that can
    be fetched again may skip it, as ``atomicfile.write_atomically`` does by default."""
    hasher = hashlib.sha256()
    with _staged(staging) as (out, temporary):
        for chunk in chunks:
            hasher.update(chunk)
            out.write(chunk)
        out.flush()
        if durable:
            os.fsync(out.fileno())
        digest = hasher.hexdigest()
        if expected is not None and digest != expected:
            raise mismatch(expected, digest)
        destination = final(digest)
        private_folder(destination.parent)
        os.replace(temporary, destination)
    return digest


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def blob_path(self, digest: str) -> Path:
        """Where the file with this sha256 is (or would be) stored."""
        return self.root / "sha256" / digest[:2] / digest

    def _tree(self, digest: str) -> Path:
        return self.root / "trees" / f"{digest}.tar"

    def put_chunks(self, chunks: Iterable[bytes], *, expected: str | None = None) -> str:
        """Store a stream of bytes under its sha256 (checked against ``expected`` when given)
        and return it; an interrupted or mismatched stream leaves nothing (publish_chunks)."""
        return publish_chunks(
            chunks, self.blob_path, staging=self.root / "sha256", expected=expected
        )

    def put_file(self, path: Path) -> str:
        digest = file_digest(path)
        if not self.blob_path(digest).exists():
            publish(path, self.blob_path(digest))
        return digest

    def put_tree(
        self, folder: Path, digest: str | None = None, *, field: str = "docker.build_context"
    ) -> str:
        """Store a folder's kept files (same rules as its digest); returns the tree digest.
        Pass ``digest`` when it is already known, to skip hashing the folder again; ``field``
        names what the folder is for, in errors."""
        digest = digest or tree_digest(folder, field=field)
        final = self._tree(digest)
        if final.exists():
            return digest
        with _staged(final.parent) as (out, temporary):
            with tarfile.open(fileobj=out, mode="w") as archive:
                for relative, path in context_files(folder, field=field):
                    info = tarfile.TarInfo(relative)
                    info.size = path.stat().st_size
                    info.mode = 0o755 if is_executable(path) else 0o644
                    with path.open("rb") as content:
                        archive.addfile(info, content)
            out.flush()
            os.replace(temporary, final)
        return digest

    def lookup(self, digest: str, *, folder: bool | None = None) -> Path | None:
        """The stored file, or an extracted copy of the stored folder, with this digest;
        ``folder`` True or False asks for only one of them (a team server's store holds a
        folder's manifest under the folder's digest as well: see kiln.serverinputs)."""
        blob = self.blob_path(digest)
        if folder is not True and blob.exists():
            return blob
        if folder is False:
            return None
        extracted = self.root / "extracted" / digest
        if not extracted.exists():
            if not self._tree(digest).exists():
                return None
            extracted.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.extract_tree(digest, extracted)
            except OSError:
                if not extracted.exists():
                    raise
                # else another process extracted it first
        return extracted

    def has_tree(self, digest: str) -> bool:
        return self._tree(digest).exists()

    def extract_tree(self, digest: str, destination: Path) -> None:
        """A fresh, private copy of a stored folder at ``destination`` (which must not exist),
        made in a temporary folder beside it and renamed into place."""
        staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".extract-"))
        try:
            with tarfile.open(self._tree(digest)) as archive:
                # Our own archives, but extract safely anyway where Python offers it (3.10.12+).
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(staging, filter="data")
                else:  # pragma: no cover - older 3.10 patch releases
                    archive.extractall(staging)
            if destination.exists():
                raise FileExistsError(destination)
            os.replace(staging, destination)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
