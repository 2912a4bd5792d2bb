"""The machine-local store of materializations (built environments), one folder per key.

A folder is *ready* only when its marker (written last, after the health check) exists, and it
appears under ``envs/`` only by an atomic rename from ``tmp/``. So a killed build never leaves
anything that looks usable: its temporary folder is removed by the next build of that key.
Builds of one key are serialized by a cross-process file lock; different keys build in parallel.
Running processes hold a reference (a file named by their pid under ``refs/KEY/``), and garbage
collection never removes a materialization with a live reference.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.errors import KilnError
from kiln.filelocks import held
from kiln.private import open_private, private_folder, write_private

MARKER = ".kiln-ready"
MATERIALIZATION_RECIPE = "kiln.materialization/1"
WHEELS_FOLDER = "wheels"  # local wheels staged from the artifact store, by sha256
FAILURE_TTL_SECONDS = 300.0
_NOT_READY = "not built"


def materialization_key(builder: str, build_hash: str, lock_digest: str, platform: str) -> str:
    """The folder name of a build: a new lock generation builds anew, the old one stays."""
    import hashlib  # here: the warm exec path imports this module and never needs it

    text = "\0".join([MATERIALIZATION_RECIPE, builder, build_hash, lock_digest, platform])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _nonce(size: int = 4) -> str:
    """Random hex for unique names (uuid and shutil are imported only when needed: the warm
    exec path imports this module, and uuid alone costs it ~7 ms)."""
    return os.urandom(size).hex()


def _remove_tree(path: Path) -> None:
    """Remove ``path`` and what it holds, as far as possible (a leftover is cleaned later)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def resolution_key(build_hash: str, platform: str) -> str:
    """The name of the file lock (and remembered failure) of resolving a build's lock."""
    return f"resolve-{build_hash[:32]}-{platform}"


def default_root(configured: str | None = None) -> Path:
    """``KILN_CACHE_DIR``, a workspace setting, or the per-user cache (refused under tests)."""
    chosen = os.environ.get("KILN_CACHE_DIR") or configured
    if chosen:
        return Path(chosen).expanduser().absolute()  # uv runs in other folders
    if os.environ.get("PYTEST_VERSION"):
        raise KilnError("refusing the per-user build cache under tests; set KILN_CACHE_DIR")
    from kiln.userdirs import cache_path

    return cache_path()


@dataclass(frozen=True)
class Entry:
    key: str
    path: Path
    marker: dict[str, Any]
    size: int  # bytes, each hard-linked file counted once across the listing
    last_used: float
    holders: int  # live processes using it


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (one we may not signal does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root
        for folder in ("envs", "tmp", "locks", "failed", "refs", "uv"):
            private_folder(root / folder)  # the root too: readable by its owner only

    @property
    def uv_cache(self) -> Path:
        """uv's package cache beside the environments, so installs hard-link its files."""
        return self.root / "uv"

    def path(self, key: str) -> Path:
        return self.root / "envs" / key

    def marker(self, key: str) -> dict[str, Any] | None:
        """The ready marker, or None when the folder is not a complete materialization."""
        return read_marker(self.path(key))

    def touch(self, key: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self.path(key) / MARKER)

    def lock(self, name: str) -> contextlib.AbstractContextManager[bool]:
        """The cross-process lock ``name`` (kiln.filelocks), waited for."""
        return held(self.root / "locks" / f"{name}.lock")

    def materialize(
        self,
        key: str,
        build: Callable[[Path], dict[str, Any]],
        *,
        quick_check: Callable[[Path], str | None],
        notify: Callable[[str], None] = lambda _message: None,
    ) -> tuple[Path, bool]:
        """The ready folder for ``key`` and whether this call built it.

        ``build(tmp)`` fills an empty temporary folder, health-checks it and returns facts for
        the marker; it raises on failure, and the temporary folder is removed.
        """
        if self._problem(key, quick_check) is None:
            return self.path(key), False
        with self.lock(key):
            # Check again: another process may have finished this build while we waited.
            problem = self._problem(key, quick_check)
            if problem is None:
                return self.path(key), False
            if problem != _NOT_READY:  # said once, by the process that rebuilds it
                notify(f"the cached environment {key[:12]} is broken ({problem}); rebuilding it")
            self._clear(key)
            staging = self.root / "tmp" / f"{key}.{os.getpid()}.{_nonce()}"
            staging.mkdir()
            try:
                facts = build(staging)
                marker = {"key": key, "created_at": time.time(), **facts}
                write_private(staging / MARKER, json.dumps(marker, indent=1))
                os.replace(staging, self.path(key))
            except BaseException:
                _remove_tree(staging)
                raise
        return self.path(key), True

    def _problem(self, key: str, quick_check: Callable[[Path], str | None]) -> str | None:
        """None when ``key`` is ready and passes ``quick_check`` (then it counts as used)."""
        if self.marker(key) is None:
            return _NOT_READY
        reason = quick_check(self.path(key))
        if reason is None:
            self.touch(key)
        return reason

    def _clear(self, key: str) -> None:
        """Remove an unready or broken folder and leftovers of killed builds (lock held)."""
        for leftover in (self.root / "tmp").glob(f"{key}.*"):
            _remove_tree(leftover)
        if self.path(key).exists():
            self._discard(self.path(key))

    def _discard(self, folder: Path) -> None:
        trash = self.root / "tmp" / f"trash.{_nonce(16)}"
        os.replace(folder, trash)  # gone from envs/ at once; deleting can take its time
        _remove_tree(trash)

    # Failures are remembered for a while, so a retry storm does not rebuild the same error.
    def remember_failure(self, key: str, error: str, log_digest: str | None) -> None:
        record = {"time": time.time(), "error": error, "log_digest": log_digest}
        write_private(self.root / "failed" / f"{key}.json", json.dumps(record))

    def recent_failure(self, key: str, ttl: float = FAILURE_TTL_SECONDS) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(
                (self.root / "failed" / f"{key}.json").read_text(encoding="utf-8")
            )
        except (OSError, ValueError):
            return None
        return record if time.time() - float(record.get("time", 0)) < ttl else None

    def forget_failure(self, key: str) -> None:
        (self.root / "failed" / f"{key}.json").unlink(missing_ok=True)

    @contextlib.contextmanager
    def hold(self, key: str, pid: int | None = None) -> Iterator[Path]:
        """Mark ``key`` as in use by ``pid`` (default: this process) until the block ends."""
        reference = self.add_reference(key, pid)
        try:
            yield self.path(key)
        finally:
            reference.unlink(missing_ok=True)

    def add_reference(self, key: str, pid: int | None = None) -> Path:
        folder = private_folder(self.root / "refs" / key)
        reference = folder / f"{pid or os.getpid()}-{_nonce()}"
        os.close(open_private(reference))
        return reference

    def holders(self, key: str) -> int:
        """Live processes holding ``key``; references of dead processes are removed."""
        count = 0
        for reference in (self.root / "refs" / key).glob("*"):
            pid = reference.name.split("-")[0]
            if pid.isdigit() and process_alive(int(pid)):
                count += 1
            else:  # a dead process's, or not ours: protects nothing
                reference.unlink(missing_ok=True)
        return count

    def entries(self) -> list[Entry]:
        """Ready materializations, least recently used first."""
        seen: set[tuple[int, int]] = set()
        found = []
        for folder in sorted((self.root / "envs").iterdir()):
            marker = self.marker(folder.name)
            if marker is None:
                continue
            size = disk_usage(folder, seen)
            last_used = (folder / MARKER).stat().st_mtime
            found.append(
                Entry(folder.name, folder, marker, size, last_used, self.holders(folder.name))
            )
        return sorted(found, key=lambda e: e.last_used)

    def remove(self, key: str, *, release: Callable[[Path], None] | None = None) -> bool:
        """Remove a materialization unless a live process holds it. True if removed.
        ``release(path)`` first removes what its builder made outside the folder."""
        with self.lock(key):
            if self.holders(key) or not self.path(key).exists():
                return False
            if release is not None:
                release(self.path(key))
            self._discard(self.path(key))
            with contextlib.suppress(OSError):
                (self.root / "refs" / key).rmdir()  # empty now: holders() removed dead ones
            return True

    def clean_temporary(self) -> int:
        """Remove leftovers of killed builds whose builder process is gone: staging folders
        (``KEY.PID.RANDOM``), build logs (``log.PID.RANDOM.log``) and abandoned trash."""
        removed = 0
        for leftover in (self.root / "tmp").iterdir():
            parts = leftover.name.split(".")
            dead = len(parts) >= 3 and parts[1].isdigit() and not process_alive(int(parts[1]))
            if parts[0] == "trash" or dead:
                if leftover.is_dir() and not leftover.is_symlink():
                    _remove_tree(leftover)
                else:
                    leftover.unlink(missing_ok=True)
                removed += 1
        return removed


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The ready marker of a materialization folder (``envs/KEY``), or None when it is not a
    complete one. Reads only: a cache that does not exist yet stays that way."""
    try:
        data: dict[str, Any] = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == folder.name else None


def disk_usage(folder: Path, seen: set[tuple[int, int]] | None = None) -> int:
    """Bytes under ``folder``, counting each inode once (hard links shared with others too)."""
    seen = set() if seen is None else seen
    total = 0
    for base, dirs, files in os.walk(folder):
        for name in files + dirs:
            try:
                info = os.lstat(os.path.join(base, name))  # noqa: PTH118 - hot loop, str paths are faster
            except OSError:
                continue
            identity = (info.st_dev, info.st_ino)
            if identity in seen:
                continue
            seen.add(identity)
            total += info.st_blocks * 512 if info.st_blocks else info.st_size
    return total


def select_for_gc(
    entries: list[Entry],
    *,
    max_size: int | None,
    older_than: float | None,
    now: float | None = None,
) -> list[Entry]:
    """Least recently used first: everything unused for ``older_than`` seconds, then more until
    the rest fits in ``max_size`` bytes. Entries held by a live process are never chosen."""
    now = now or time.time()
    chosen: list[Entry] = []
    total = sum(e.size for e in entries)
    for entry in entries:
        if entry.holders:
            continue
        too_old = older_than is not None and now - entry.last_used > older_than
        too_big = max_size is not None and total > max_size
        if too_old or too_big:
            chosen.append(entry)
            total -= entry.size
    return chosen
