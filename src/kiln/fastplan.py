"""What a ``kiln env build`` on the standard-library path builds (kiln.fastbuild): the
version, its stored definition (JSON) and newest lock read with ``sqlite3``
(kiln.registry.fastbuilds), the interpreter, and whether this path builds it at all.

``plan_warm`` answers None for anything else, and the caller takes the full path, which gives
the same result or reports the problem: another registry (PostgreSQL, a server), a schema at
another revision, a definition the venv builder does not build alone (conda packages, docker,
user-managed, local wheels, ``${VAR}`` references, keys it does not know), a stored lock that
fails its check, or a recent failure of the same build or resolution.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from kiln.builders import interpreters, venv, venvcreate
from kiln.builders.base import BuildContext, Lock, Target
from kiln.buildlog import NullLog
from kiln.cache import Cache, materialization_key, resolution_key
from kiln.errors import KilnError
from kiln.registry import fastbuilds
from kiln.registry.lockrow import LockRow, lock_digest
from kiln.registry.readonly import open_writable
from kiln.workspace import Workspace

# What a stored definition may hold for this path (defaults are not stored); anything else,
# or a value that needs another builder, takes the full path.
_TOP = {"python", "environment_variables", "inferencing_stack_version", "inference_config"}
_PYTHON = {"version", "pip", "check_imports"}
_PIP = {"packages", "constraints", "index_url", "extra_index_urls", "find_links", "pre"}


class PipIndex(NamedTuple):
    """The index options of a stored definition (venv.IndexOptions)."""

    index_url: str | None
    extra_index_urls: list[str]
    find_links: list[str]
    pre: bool


@dataclass(frozen=True)
class Plan:
    """What a warm build builds, read with the standard library; ``connection`` writes its
    record (closed by ``build_planned``)."""

    connection: sqlite3.Connection
    version: fastbuilds.StoredVersion
    pip: dict[str, Any]
    check_imports: list[str]
    target: Target
    lock: LockRow | None  # None: the build resolves the first lock
    cache: Cache
    started: float  # time.monotonic() when planning began: a build's seconds count from it
    retry: bool

    @property
    def reference(self) -> str:
        return f"{self.version.name}:{self.version.version}"


def _reference(text: str) -> tuple[str, str | None] | None:
    """(name, version or None for the newest) as catalog.parse_reference reads it, or None for
    what the full path handles (curated names, labels, malformed references)."""
    name, _, version = text.partition(":")
    if not name or "@" in text or ":" in version or name.startswith("Kiln-"):
        return None
    return name, (version or None) if version != "latest" else None


def _plain_pip(text: str, stored: dict[str, Any]) -> bool:
    """Whether the venv builder alone builds this stored definition, needing no secret (its
    pip entries are checked by ``buildable_lock``)."""
    python, pip = stored.get("python", {}), stored.get("python", {}).get("pip", {})
    if "${" in text or not set(stored) <= _TOP or not isinstance(python, dict):
        return False
    return set(python) <= _PYTHON and isinstance(pip, dict) and set(pip) <= _PIP


def _names_no_local_file(packages: list[str]) -> bool:
    """No pip entry is a local path or wheel (the full path stages those before resolving)."""
    from kiln.builders.plainpins import all_plain

    if all_plain(packages):
        return True
    from kiln.builders.venv import LOCAL_KINDS
    from kiln.environment.packages import parse_pip_entry

    return not any(parse_pip_entry(entry).kind in LOCAL_KINDS for entry in packages)


def buildable_lock(lock: LockRow, pip: dict[str, Any]) -> bool:
    """No pip entry names a local file (the full path stages those), and buildlocks.lock_problem
    finds nothing: the text is the stored digest's, it parses, and it installs every exact pin
    (the full path reports any problem). Plain pins are checked without ``packaging``."""
    from kiln.builders.plainpins import plain_pins_met

    if lock_digest(lock.lock_text) != lock.lock_digest:
        return False
    packages, constraints = pip.get("packages", []), pip.get("constraints", [])
    if plain_pins_met(packages, constraints, lock.lock_text):
        return True  # bare names and plain pins name no local file either
    from kiln.builders.lockcheck import pin_problems, read_lock

    if not _names_no_local_file(packages):
        return False
    try:
        locked = read_lock(to_lock(lock))
    except ValueError:
        return False
    return not pin_problems(packages, constraints, [], locked)


def to_lock(lock: LockRow) -> Lock:
    return Lock(lock.lock_format, lock.lock_text, lock.packages, lock.resolver)


def plan_warm(workspace: Workspace, reference: str, *, retry: bool) -> Plan | None:
    """The plan of a warm build of ``reference``, or None for the full path. Starts ``uv
    venv`` for it when the environment is not built yet (unused, it is removed at exit)."""
    started = time.monotonic()
    parsed = _reference(reference)
    if parsed is None or not workspace.is_embedded:
        return None
    connection = open_writable(workspace.registry_file)
    if connection is None:
        return None
    try:
        plan = _plan(workspace, connection, *parsed, retry=retry, started=started)
    except (sqlite3.Error, ValueError, KeyError, TypeError, AttributeError, KilnError):
        plan = None  # the full path reads the same rows and reports what is wrong
    if plan is None:
        connection.close()
    return plan


def _plan(
    workspace: Workspace,
    connection: sqlite3.Connection,
    name: str,
    version: str | None,
    *,
    retry: bool,
    started: float,
) -> Plan | None:
    found = fastbuilds.find_version(connection, name=name, version=version)
    if found is None:
        return None
    stored = json.loads(found.definition)
    if not isinstance(stored, dict) or not _plain_pip(found.definition, stored):
        return None
    python = stored.get("python", {})
    cache = Cache(workspace.cache_root)
    target = interpreters.find(
        python.get("version"),
        cache.uv_cache,
        downloads=workspace.setting("python_downloads") == "automatic",
        mirror=workspace.setting("python_mirror"),
    )
    lock = fastbuilds.newest_lock(connection, build_hash=found.build_hash, platform=target.platform)
    pip, imports = python.get("pip", {}), list(python.get("check_imports", []))
    prepared = BuildContext(NullLog(), cache.uv_cache, {})
    if lock is None:  # the first build: it resolves
        if cache.recent_failure(resolution_name(found, target)) and not retry:
            return None  # the full path says when and why resolving failed
        if not _names_no_local_file(list(pip.get("packages", []))):
            return None  # the full path stages local files first
        venvcreate.prepare(target, prepared)  # uv makes the venv while the rest is read
        return Plan(connection, found, pip, imports, target, None, cache, started, retry)
    key = materialization_key(venv.name, found.build_hash, lock.lock_digest, target.platform)
    if cache.recent_failure(key) and not retry:
        return None  # the full path says when and why it failed
    if cache.marker(key) is None:  # uv makes the venv while the lock is checked
        venvcreate.prepare(target, prepared)
    if not buildable_lock(lock, pip):
        venvcreate.discard(target, prepared)  # the full path stages wheels, or refuses the lock
        return None
    return Plan(connection, found, pip, imports, target, lock, cache, started, retry)


def resolution_name(version: fastbuilds.StoredVersion, target: Target) -> str:
    """The name of the cache's lock (and remembered failure) of resolving this build."""
    return resolution_key(version.build_hash, target.platform)


def pip_index(pip: dict[str, Any]) -> PipIndex:
    return PipIndex(
        pip.get("index_url"),
        list(pip.get("extra_index_urls", [])),
        list(pip.get("find_links", [])),
        bool(pip.get("pre", False)),
    )
