"""Content digests of files and folders named by a definition, and the path-safety rules.

Paths are resolved against the directory a definition came from and must stay inside it
(symlinks included). A build context's digest covers each kept file's relative path, its
executable bit and its bytes, honouring ``.kilnignore`` and ``.gitignore``.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

from kiln.errors import InvalidDefinition, MissingFile

MAX_DEFINITION_FILE_BYTES = 5 * 1024 * 1024
MAX_CONTEXT_BYTES = 512 * 1024 * 1024
_ALWAYS_IGNORED = (".git/", ".kiln/", "__pycache__/")
_ALWAYS_IGNORED_FOLDERS = frozenset(pattern.rstrip("/") for pattern in _ALWAYS_IGNORED)


class _Ignore(Protocol):
    def match_file(self, file: str) -> bool: ...


class _AlwaysIgnored:
    """What ``_ALWAYS_IGNORED`` alone matches, as pathspec's gitignore rules match it: a folder
    of one of those names at any depth (``name/``) and everything under it; a file of that name
    is kept. For the common folder without ignore files, so a warm run does not import pathspec
    (about 10 ms); tests/environment/test_ignore_rules.py checks it against pathspec."""

    def match_file(self, file: str) -> bool:
        return any(part in _ALWAYS_IGNORED_FOLDERS for part in file.split("/")[:-1])


def resolve_inside(base: Path, relative: str, *, field: str) -> Path:
    """``base / relative``, refusing anything (symlinks too) that ends up outside ``base``."""
    root = base.resolve()
    if "\0" in relative:
        raise InvalidDefinition(
            f"`{field}`: {relative!r} holds a NUL byte; name a file by its path"
        )
    try:
        target = (root / Path(relative).expanduser()).resolve()
    except RuntimeError:  # `~name` of a user this machine does not know
        raise InvalidDefinition(
            f"`{field}`: {relative!r} names the home folder of an unknown user; use a path "
            "relative to the definition's directory"
        ) from None
    if target != root and root not in target.parents:
        raise InvalidDefinition(
            f"`{field}`: {relative!r} points outside {root}; keep referenced files inside the "
            "definition's directory"
        )
    return target


def read_limited(path: Path, *, field: str, limit: int = MAX_DEFINITION_FILE_BYTES) -> bytes:
    """The bytes of a definition file, refusing more than ``limit`` of them.

    The read itself stops after ``limit`` bytes (the size on disk can change after it is looked
    at), and only a regular file is read: a FIFO or a device named ``kiln.yaml`` would block or
    never end.
    """
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise MissingFile(f"`{field}`: {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidDefinition(f"`{field}`: {path} is a folder, not a file") from None
    try:
        mode = os.fstat(handle).st_mode
        if stat.S_ISDIR(mode):
            raise InvalidDefinition(f"`{field}`: {path} is a folder, not a file")
        if not stat.S_ISREG(mode):
            raise InvalidDefinition(f"`{field}`: {path} is not a regular file; name a file")
    except BaseException:
        os.close(handle)
        raise
    with os.fdopen(handle, "rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        size = max(len(data), path.stat().st_size)
        raise InvalidDefinition(
            f"`{field}`: {path} is {size:,} bytes, over the {limit:,}-byte limit for "
            "definition files; is this the right file?"
        )
    return data


def read_text_limited(path: Path, *, field: str) -> str:
    data = read_limited(path, field=field)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDefinition(
            f"`{field}`: {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "save it as UTF-8"
        ) from None


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_executable(path: Path) -> bool:
    """The owner's executable bit, as git records it: a property of the file, not of who asks."""
    return bool(path.stat().st_mode & stat.S_IXUSR)


def _ignore_spec(root: Path) -> _Ignore:
    lines: list[str] = list(_ALWAYS_IGNORED)
    for name in (".gitignore", ".kilnignore"):
        candidate = root / name
        if candidate.is_file():
            lines += candidate.read_text(encoding="utf-8", errors="replace").splitlines()
    if len(lines) == len(_ALWAYS_IGNORED):
        return _AlwaysIgnored()
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


def context_files(root: Path, *, field: str = "docker.build_context") -> Iterator[tuple[str, Path]]:
    """Kept files of a build context as (posix relative path, path), sorted by relative path.

    A symlink leaving the context is an error; a symlinked file inside it counts as its target's
    content, and a symlinked folder inside it is not walked (its target is walked already).
    ``field`` names what the folder is for, in errors.
    """
    spec = _ignore_spec(root)
    resolved_root = root.resolve()
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        rel_folder = Path(folder).relative_to(root).as_posix()
        prefix = "" if rel_folder == "." else rel_folder + "/"
        dirs[:] = [d for d in dirs if not spec.match_file(prefix + d + "/")]
        for name in dirs:
            _refuse_escaping_link(Path(folder) / name, prefix + name, resolved_root, field)
        for name in files:
            rel = prefix + name
            if not spec.match_file(rel):
                _refuse_escaping_link(Path(folder) / name, rel, resolved_root, field)
                _refuse_special(Path(folder) / name, rel, field)
                found.append((rel, Path(folder) / name))
    return iter(sorted(found))


def _refuse_special(path: Path, rel: str, field: str) -> None:
    """Only regular files have content to hash: a FIFO would block forever, a dangling link
    has nothing to read."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InvalidDefinition(
            f"`{field}`: {rel} is a symlink to nothing; remove it or add it to .kilnignore"
        ) from None
    if not stat.S_ISREG(mode):
        raise InvalidDefinition(
            f"`{field}`: {rel} is not a regular file (a pipe, socket or device); "
            "remove it or add it to .kilnignore"
        )


def _refuse_escaping_link(path: Path, rel: str, resolved_root: Path, field: str) -> None:
    if not path.is_symlink():
        return
    target = path.resolve()
    if target != resolved_root and resolved_root not in target.parents:
        raise InvalidDefinition(
            f"`{field}`: {rel} is a symlink to {target}, outside the build "
            "context; copy it in or add it to .kilnignore"
        )


class TreeEntry(NamedTuple):
    """One kept file of a folder: where it sits, whether it is executable, what it holds."""

    relative: str
    executable: bool
    digest: str
    path: Path


def tree_manifest(
    root: Path, *, field: str = "docker.build_context"
) -> tuple[bytes, list[TreeEntry]]:
    """The folder's manifest, one ``path NUL x|- NUL sha256`` line per kept file, and its
    entries. Its sha256 is the folder's tree digest, so a store that keeps the manifest and the
    files by sha256 keeps the folder, checkable like any file (kiln.serverinputs)."""
    if not root.is_dir():
        raise InvalidDefinition(f"`{field}`: {root} is not a folder")
    lines: list[bytes] = []
    entries: list[TreeEntry] = []
    total = 0
    for rel, path in context_files(root, field=field):
        total += path.stat().st_size
        if total > MAX_CONTEXT_BYTES:
            raise InvalidDefinition(
                f"`{field}`: {root} holds over {MAX_CONTEXT_BYTES:,} bytes; "
                "list large data in .kilnignore"
            )
        entry = TreeEntry(rel, is_executable(path), file_digest(path), path)
        entries.append(entry)
        lines.append(tree_line(rel, executable=entry.executable, sha256=entry.digest))
    return b"".join(lines), entries


_MANIFEST_LINE = re.compile(r"([^\0\n]+)\0([x-])\0([0-9a-f]{64})")


def parse_tree_manifest(manifest: bytes) -> list[tuple[str, bool, str]] | None:
    """(relative path, executable, sha256) per line of a manifest tree_manifest wrote, or None
    when ``manifest`` is not one (or names a path that would leave its folder)."""
    try:
        text = manifest.decode()
    except UnicodeDecodeError:
        return None
    if not text.endswith("\n"):
        return None
    parsed = []
    for line in text[:-1].split("\n"):
        match = _MANIFEST_LINE.fullmatch(line)
        if match is None:
            return None
        relative = match.group(1)
        parts = relative.split("/")
        if relative.startswith("/") or ".." in parts or "" in parts or "." in parts:
            return None
        parsed.append((relative, match.group(2) == "x", match.group(3)))
    return parsed


def tree_digest(root: Path, *, field: str = "docker.build_context") -> str:
    """sha256 over (relative path, executable bit, content digest) of every kept file: the
    sha256 of its manifest."""
    return hashlib.sha256(tree_manifest(root, field=field)[0]).hexdigest()


def tree_line(rel: str, *, executable: bool, sha256: str) -> bytes:
    """One file's line of a folder's manifest (kept in sorted path order), whose sha256 is the
    tree digest: also how a stored list of a folder's files is checked against it."""
    return f"{rel}\0{'x' if executable else '-'}\0{sha256}\n".encode()
