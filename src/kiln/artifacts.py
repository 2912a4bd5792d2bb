"""A content-addressed blob store: files by sha256, folders as deterministic tarballs by the
tree digest of their kept files. Writes go to a temporary name and are renamed into place, so
a blob that exists is complete."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from kiln.environment.files import context_files, file_digest, is_executable, tree_digest
from kiln.private import private_folder


def publish(source: Path | bytes, final: Path) -> None:
    """Write ``source`` (a file's content or bytes) to ``final`` atomically: a temporary name in
    the same folder, flushed to disk, then renamed. A file that exists is complete."""
    private_folder(final.parent)
    handle, temporary = tempfile.mkstemp(dir=final.parent, prefix=".incoming-")
    try:
        with os.fdopen(handle, "wb") as out:
            if isinstance(source, bytes):
                out.write(source)
            else:
                with source.open("rb") as data:
                    shutil.copyfileobj(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _blob(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def _tree(self, digest: str) -> Path:
        return self.root / "trees" / f"{digest}.tar"

    def put_file(self, path: Path) -> str:
        digest = file_digest(path)
        if not self._blob(digest).exists():
            publish(path, self._blob(digest))
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
        final.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=final.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out, tarfile.open(fileobj=out, mode="w") as archive:
                for relative, path in context_files(folder, field=field):
                    info = tarfile.TarInfo(relative)
                    info.size = path.stat().st_size
                    info.mode = 0o755 if is_executable(path) else 0o644
                    with path.open("rb") as content:
                        archive.addfile(info, content)
            os.replace(temporary, final)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def lookup(self, digest: str) -> Path | None:
        """The stored file, or an extracted copy of the stored folder, with this digest."""
        blob = self._blob(digest)
        if blob.exists():
            return blob
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
