"""Warm reuse without the heavy imports: ``kiln env exec|which`` on an already built environment.

Why: a warm ``kiln env exec`` should cost little more than starting Python, but importing
SQLAlchemy and pydantic alone takes ~0.7 s on a 2-core machine. When the workspace is the
embedded SQLite registry, this module finds NAME[:VERSION] -> build hash -> newest lock -> ready
materialization with the standard library only, using a pointer the CLI writes after each build
(``by-build/BUILD_HASH.json`` in the cache). Anything unusual (no pointer, a newer lock, a
missing marker, a broken interpreter, PostgreSQL) returns None and the caller takes the full
path, which builds or rebuilds as needed. Tests check both paths give the same interpreter and
environment.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.cache import MARKER
from kiln.registry.revision import SCHEMA_REVISION
from kiln.secrets import expand
from kiln.venvcheck import check_venv


@dataclass(frozen=True)
class Warm:
    """A ready materialization and the registered version it serves."""

    key: str
    path: Path
    interpreter: Path
    builder: str
    variables: dict[str, str]
    name: str
    version: str
    build_hash: str
    lock_digest: str
    platform: str

    def process_environment(self, base: dict[str, str]) -> dict[str, str]:
        return activation(self.builder, self.path, self.variables, base)


def pointer_path(cache_root: Path, build_hash: str) -> Path:
    return cache_root / "by-build" / f"{build_hash}.json"


def write_pointer(
    cache_root: Path,
    *,
    build_hash: str,
    key: str,
    platform: str,
    lock_digest: str,
    builder: str,
    interpreter: Path,
) -> None:
    """Remember, on this machine, which materialization serves ``build_hash``."""
    target = pointer_path(cache_root, build_hash)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "key": key,
        "platform": platform,
        "lock_digest": lock_digest,
        "builder": builder,
        "interpreter": str(interpreter),
    }
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    os.replace(temporary, target)


def _row(
    connection: sqlite3.Connection, name: str, version: str | None
) -> tuple[str, str, str] | None:
    row: tuple[str, str, str] | None
    if version is None:
        sql = (
            "SELECT version, build_hash, definition FROM environment_versions "
            "WHERE name = ? AND archived = 0 ORDER BY id DESC LIMIT 1"
        )
        row = connection.execute(sql, (name,)).fetchone()
    else:
        sql = (
            "SELECT version, build_hash, definition FROM environment_versions "
            "WHERE name = ? AND version = ?"
        )
        row = connection.execute(sql, (name, version)).fetchone()
    return row


def find_warm(registry: Path, cache_root: Path, reference: str) -> Warm | None:
    """The ready materialization for ``reference``, or None to take the full path."""
    name, _, version = reference.partition(":")
    if not name or "@" in reference or name.startswith("Kiln-") or not registry.is_file():
        return None  # curated definitions live in the package: the full path handles them
    try:
        connection = sqlite3.connect(f"file:{registry}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error:
        return None
    try:
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        row = _row(connection, name, version or None) if revision == (SCHEMA_REVISION,) else None
        if row is None:
            return None
        found_version, build_hash, definition = row
        pointer = json.loads(pointer_path(cache_root, build_hash).read_text(encoding="utf-8"))
        newest = connection.execute(
            "SELECT lock_digest FROM locks WHERE build_hash = ? AND platform = ? ORDER BY generation DESC LIMIT 1",
            (build_hash, pointer["platform"]),
        ).fetchone()
    except (sqlite3.Error, OSError, ValueError, KeyError):
        return None
    finally:
        connection.close()
    facts = {"name": name, "version": found_version, "build_hash": build_hash}
    return _ready(cache_root, pointer, newest, json.loads(definition), facts)


def _ready(
    cache_root: Path,
    pointer: dict[str, Any],
    newest: tuple[str] | None,
    definition: dict[str, Any],
    facts: dict[str, str],
) -> Warm | None:
    if newest is None or newest[0] != pointer["lock_digest"]:
        return None  # a newer lock generation exists: the full path builds it
    path = cache_root / "envs" / pointer["key"]
    try:
        marker = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    interpreter = Path(pointer["interpreter"])
    if marker.get("lock_digest") != pointer["lock_digest"] or not interpreter.exists():
        return None
    if pointer["builder"] in ("venv", "conda") and check_venv(path) is not None:
        return None  # the full path rebuilds it and says why
    os.utime(path / MARKER)  # last used, for LRU garbage collection
    return Warm(
        pointer["key"],
        path,
        interpreter,
        pointer["builder"],
        definition.get("environment_variables", {}),
        lock_digest=pointer["lock_digest"],
        platform=pointer["platform"],
        **facts,
    )


def activation(
    builder: str, path: Path, variables: dict[str, str], base: dict[str, str]
) -> dict[str, str]:
    """The process environment for running in a materialization: its env vars applied with
    ``${VAR}`` references expanded from ``base``, and a virtualenv's bin first on PATH."""
    env = dict(base)
    for key, value in variables.items():
        env[key] = expand(value, env, default="")
    if builder in ("venv", "conda"):  # a conda build is a venv with conda packages in it
        env["VIRTUAL_ENV"] = str(path)
        env["PATH"] = f"{path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.pop("PYTHONHOME", None)
    if builder == "conda":
        env["CONDA_PREFIX"] = str(path)
    return env
