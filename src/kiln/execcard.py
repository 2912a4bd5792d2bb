# ruff: noqa: PTH100, PTH108, PTH109, PTH110, PTH111, PTH113, PTH116, PTH118, PTH119, PTH121, PTH123
# (os on str paths: pathlib imports re and more, which this lane exists to avoid)
"""The warm ``kiln env exec NAME -- CMD`` with ``os`` alone: an exec card.

Why: the standard-library warm path (kiln.fastexec) reads the registry with sqlite3 and the
build pointer and marker with json, and its modules bring pathlib, re, typing and dataclasses:
~35 ms of imports before the command starts, where ``uv run`` spends ~15 ms in all. A card is
that path's answer for one reference (the interpreter, the activation, the definition's
variables, the hold folder) with the identity of every file the answer was read from: the
workspace config, the registry database and its journals, this machine's build pointer and the
materialization's ready marker. The lane below uses a card only while each of those is the same
file (device and inode), of the same size, with the same change time (ctime, which no program
can set back; a journal's mtime, and none for the marker: see ``_identity``); and the warm path
writes a card only when all of them settled ``SETTLED_NS`` before its reading began (as git
treats "racily clean" files), so no change can share a clock tick with what the card recorded.
Anything else (no card, a damaged one, a file changed, gone or made, a required file missing)
returns, having changed nothing, and the caller takes the warm path, which writes the card
again once settled, or the full path, which builds.

Cards live in the default build cache's ``exec-cards/`` folder (``KILN_CACHE_DIR`` or the
per-user cache: the variables that choose that cache choose the folder), one per workspace and
reference as given, private (0600). They hold what the registry holds: secret-looking variables
are ``${NAME}`` references there (kiln.secrets.plain_secret_variable), expanded here from the
caller's environment at each start.
"""

from __future__ import annotations

import os
import sys

from kiln import __version__
from kiln.processenv import process_environment
from kiln.userdirs import xdg_folder
from kiln.workspacefolder import (
    CONFIG_FILE,
    REGISTRY_FILE,
    WORKSPACE_DIR,
    find_upward,
    is_server_url,
)

TYPE_CHECKING = False  # typing itself would cost this lane ~10 ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from kiln.ready import Ready

FORMAT = "kiln.exec-card/1"  # bump when a card's fields or their meaning change
CARDS = "exec-cards"  # the folder in the default build cache
SETTLED_NS = 2_000_000_000  # file times can be as coarse as 2 s (FAT, some network shares)
_ABSENT = ["-", "-", "-", "-"]


def workspace_root(explicit: str | None) -> str | None:
    """The ``.kiln`` folder ``Workspace.discover(explicit, create=False)`` opens, or None where
    finding it takes more than ``os`` (a server, the per-user default under tests). The writer
    checks it is the same folder as the workspace the warm path opened."""
    given = explicit or os.environ.get("KILN_WORKSPACE")
    if given:
        if is_server_url(given):
            return None
        folder = os.path.abspath(os.path.expanduser(given))
        if os.path.basename(folder) == WORKSPACE_DIR and os.path.isfile(
            os.path.join(folder, CONFIG_FILE)
        ):
            return folder
        return os.path.join(folder, WORKSPACE_DIR)
    found = find_upward(os.getcwd())
    if found is not None:
        return os.path.join(found, WORKSPACE_DIR)
    if os.environ.get("PYTEST_VERSION") or os.environ.get("KILN_NO_DEFAULT_WORKSPACE"):
        return None
    data = xdg_folder("data")
    return None if data is None else os.path.join(data, "workspace", WORKSPACE_DIR)


def card_folder() -> str | None:
    """``exec-cards/`` in the default build cache (kiln.cache.default_root without a
    workspace's setting), or None where finding it takes more than ``os``."""
    chosen = os.environ.get("KILN_CACHE_DIR")
    if chosen:
        return os.path.join(os.path.abspath(os.path.expanduser(chosen)), CARDS)
    if os.environ.get("PYTEST_VERSION"):
        return None
    cache = xdg_folder("cache")
    return None if cache is None else os.path.join(cache, CARDS)


def _card_path(explicit: str | None, reference: str) -> tuple[str, list[str], str] | None:
    """(the card's file, the key it must hold, the workspace's ``.kiln``) for ``reference``
    in the workspace ``explicit`` names or discovery finds; None without either folder."""
    root = workspace_root(explicit)
    folder = card_folder()
    if root is None or folder is None:
        return None
    # KILN_CACHE_DIR as given: set to the default folder, it is another setting than unset
    # (a workspace's cache_dir then no longer counts), though the card folder is the same.
    key = [FORMAT, __version__, root, reference, os.environ.get("KILN_CACHE_DIR", "")]
    digest = 0xCBF29CE484222325  # FNV-1a, 64 bits: a file name; the card holds the whole key
    for byte in "\0".join(key).encode("utf-8", "surrogateescape"):
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return os.path.join(folder, f"{digest:016x}"), key, root


# What each recorded file is, in the order recorded: the workspace config, the registry and
# its two journals, this machine's build pointer, the ready marker.
_KINDS = ("file", "file", "journal", "journal", "file", "marker")


def _identity(path: str, kind: str) -> list[str]:
    """``path``'s device, inode, size and change time, dashes for what does not count: a
    marker's time (every use touches it), an absent file's all, and a journal's all when it
    is absent or empty (SQLite reads no frame from it). A journal's time is its mtime: SQLite
    running as root gives a journal it opens, even to read, to the database's owner, which
    changes the ctime."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return [path, *_ABSENT]
    if kind == "journal" and st.st_size == 0:
        return [path, *_ABSENT]
    when = {"marker": "-", "journal": str(st.st_mtime_ns)}.get(kind, str(st.st_ctime_ns))
    return [path, str(st.st_dev), str(st.st_ino), str(st.st_size), when]


def _identities(files: Sequence[str]) -> list[str]:
    """Raises ValueError for a list of another length (a card from another layout)."""
    return [
        item for path, kind in zip(files, _KINDS, strict=True) for item in _identity(path, kind)
    ]


_FIELDS = {
    "key",
    "files",
    "run",
    "argv",
    "set_env",
    "path_prepend",
    "unset",
    "requires",
    "variables",
}


def _encode(fields: dict[str, list[str]]) -> bytes:
    """Raises ValueError for a value holding NUL, which would end it early."""
    tokens: list[str] = []
    for name, values in fields.items():
        if any("\0" in value for value in values):
            raise ValueError(f"a card's {name} holds NUL")
        tokens += [name, str(len(values)), *values]
    return "\0".join(tokens).encode("utf-8", "surrogateescape")


def _decode(data: bytes) -> dict[str, list[str]]:
    """The fields back; raises ValueError or IndexError when the bytes are not a card."""
    tokens = data.decode("utf-8", "surrogateescape").split("\0")
    fields: dict[str, list[str]] = {}
    at = 0
    while at < len(tokens):
        name, count = tokens[at], int(tokens[at + 1])
        if name in fields:
            raise ValueError(f"a card names {name} twice")
        fields[name] = tokens[at + 2 : at + 2 + count]
        at += 2 + count
    if at != len(tokens) or set(fields) != _FIELDS:
        raise ValueError("a card ends inside a field, or lacks one")
    if any(len(fields[name]) % 2 for name in ("set_env", "variables")):
        raise ValueError("a card's pairs are not pairs")
    return fields


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _valid_card(explicit: str | None, reference: str) -> dict[str, list[str]] | None:
    where = _card_path(explicit, reference)
    if where is None:
        return None
    path, key, _ = where
    try:
        with open(path, "rb") as handle:
            card = _decode(handle.read())  # every field there, pairs in pairs
        recorded = card["files"]
        if card["key"] != key or _identities(recorded[::5]) != recorded:
            return None
        interpreter, _, _ = card["run"]
    except (OSError, ValueError, IndexError):
        return None
    required = card["requires"] if card["argv"] else [interpreter, *card["requires"]]
    if not all(os.path.exists(path) for path in required):
        return None  # the warm path sees it too and the full path rebuilds
    return card


def exec_from_card(explicit: str | None, reference: str, command: Sequence[str]) -> None:
    """Replace this process with ``command`` run in ``reference``'s environment as its card
    records it, holding the materialization for this pid as ``Cache.add_reference`` does.
    Returns, having changed nothing, when no valid card answers (see the module's doc)."""
    card = _valid_card(explicit, reference)
    if card is None:
        return
    _, marker, holds = card["run"]
    try:  # named as Cache.add_reference names a hold: PID-NONCE
        hold = os.path.join(holds, f"{os.getpid()}-{os.urandom(4).hex()}")
        os.close(os.open(hold, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return
    try:
        if _identity(marker, "marker") != card["files"][-5:]:
            raise FileNotFoundError(marker)  # collected just before the hold: build again
        os.utime(marker)  # last used, for LRU garbage collection
        env = process_environment(
            os.environ,
            _pairs(card["variables"]),
            set_env=_pairs(card["set_env"]),
            path_prepend=card["path_prepend"],
            unset=card["unset"],
        )
        argv = [*card["argv"], *command]
        sys.stdout.flush()
        os.execvpe(argv[0], argv, env)
    except (OSError, ValueError):  # not found, say: the warm path says so, or builds
        try:  # noqa: SIM105 - contextlib costs this lane ~2 ms
            os.unlink(hold)
        except OSError:
            pass


def remember(
    explicit: str | None,
    reference: str,
    ready: Ready,
    *,
    workspace: Path,
    cache_root: Path,
    cache_setting: str | None,
    started_ns: int,
) -> None:
    """Write ``reference``'s card from ``ready``, what the warm path found in the workspace
    folder ``workspace`` (its ``.kiln``) in the build cache ``cache_root`` (chosen by
    ``KILN_CACHE_DIR``, else the workspace's ``cache_setting``, else the per-user cache),
    reading from ``started_ns`` (``time.time_ns()``) on: only when the lane finds the same
    workspace and the same cache, and everything read had settled. Best effort: a card not
    written only means the next start takes the warm path again."""
    from kiln.cache import MARKER
    from kiln.fastexec import pointer_path

    chosen = os.environ.get("KILN_CACHE_DIR") or cache_setting
    if chosen and not chosen.startswith("/"):
        return  # relative to the current folder or $HOME, which a card's key does not hold
    where = _card_path(explicit, reference)
    if where is None:
        return
    path, key, root = where
    registry = str(workspace / REGISTRY_FILE)
    files = [
        str(workspace / CONFIG_FILE),
        registry,
        f"{registry}-wal",
        f"{registry}-journal",
        str(pointer_path(cache_root, ready.build_hash)),
        str(ready.path / MARKER),
    ]
    try:
        if not os.path.samefile(root, workspace):
            return
        identities = _identities(files)
        changed = [int(when) for when in identities[4:-5:5] if when != "-"]
        if any(when >= started_ns - SETTLED_NS for when in changed):
            return  # something changed while (or just before) the warm path read it
        if identities[-4] == "-":
            return  # the marker is gone: collected meanwhile
        activation = ready.activation
        card = {
            "key": key,
            "files": identities,
            "run": [str(ready.interpreter), files[-1], str(cache_root / "refs" / ready.key)],
            "argv": list(activation.argv),
            "set_env": [item for pair in activation.set_env.items() for item in pair],
            "path_prepend": list(activation.path_prepend),
            "unset": list(activation.unset),
            "requires": list(activation.requires),
            "variables": [item for pair in ready.variables.items() for item in pair],
        }
        data = _encode(card)
        if os.path.exists(path):
            with open(path, "rb") as handle:
                if handle.read() == data:
                    return  # the same card: the lane stepped aside for another reason
        from pathlib import Path

        from kiln.atomicfile import write_atomically  # tempfile: only when there is news

        write_atomically(Path(path), data)
    except (OSError, ValueError):  # ValueError: a value holding NUL, which no card can hold
        pass
