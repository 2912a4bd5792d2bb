"""Warm reuse without the heavy imports: ``kiln env exec|which`` on an already built environment.

Why: a warm ``kiln env exec`` should cost little more than starting Python, but importing
SQLAlchemy and pydantic alone takes ~0.7 s on a 2-core machine. When the workspace is the
embedded SQLite registry, this module finds NAME[:VERSION] -> build hash -> newest lock -> ready
materialization with the standard library only, using a pointer every successful build writes
(``by-build/BUILD_HASH.json`` in the cache) with the facts recorded at build time: the key, the
interpreter and the builder's activation (kiln.activation). It knows no builder: it checks the
files the activation requires and applies it. Anything unusual (no pointer, a newer lock, a
missing marker or file, PostgreSQL) returns None and the caller takes the full path, which
builds or rebuilds as needed. Tests check both paths give the same interpreter and environment.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.activation import Activation
from kiln.cache import MARKER
from kiln.dockerrun import settings
from kiln.registry.layout import ENVIRONMENT_VERSIONS, LOCKS, columns
from kiln.registry.readonly import open_readonly

IMAGE_LINK_RECIPE = "kiln.image-form/1"  # bump when images.image_record derives differently


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
    activation: Activation
    docker_run: dict[str, Any]  # the definition's docker run settings (kiln.dockerrun.settings)

    def process_environment(self, base: dict[str, str]) -> dict[str, str]:
        return self.activation.environment(self.variables, base)

    @property
    def in_image(self) -> bool:
        """Whether it runs only inside its image (its activation starts an engine)."""
        return bool(self.activation.argv)

    def require_this_machine(self, purpose: str, instead: str | None = None) -> None:
        """Refuse, in one line, to use an environment that runs only inside its image for
        ``purpose``, which runs this machine's Python; ``instead`` names what does run in it."""
        if self.in_image:
            from kiln.errors import UsageError

            instead = instead or (
                "running inside the image is not available in this version of Kiln yet: use "
                "`kiln env exec` (which runs in the image)"
            )
            raise UsageError(
                f"{self.name}:{self.version} is built as an image, and {purpose} runs this "
                f"machine's Python; {instead}, or register a copy without its docker section"
            )


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
    activation: Activation,
) -> None:
    """Remember, on this machine, which materialization serves ``build_hash`` and how to run
    in it."""
    target = pointer_path(cache_root, build_hash)
    data = {
        "key": key,
        "platform": platform,
        "lock_digest": lock_digest,
        "builder": builder,
        "interpreter": str(interpreter),
        "activation": activation.to_json(),
    }
    _write_if_changed(target, json.dumps(data))


def _write_if_changed(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically unless it holds it already: a warm reuse
    writes nothing."""
    from kiln.atomicfile import write_atomically  # not needed by the warm path, which reads

    try:
        if target.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    write_atomically(target, text)


def image_link_path(cache_root: Path, build_hash: str, base: str) -> Path:
    """Where this machine remembers the build hash of ``build_hash``'s image form on the
    default base image ``base`` (keyed by both: another base never finds it)."""
    import hashlib  # here: the warm exec path of a plain environment never needs it

    key = hashlib.sha256(f"{IMAGE_LINK_RECIPE}\0{build_hash}\0{base}".encode()).hexdigest()
    return cache_root / "by-build" / "image-form" / f"{key[:40]}.json"


def write_image_link(cache_root: Path, build_hash: str, base: str, image_build_hash: str) -> None:
    """Remember that the image form of ``build_hash`` on ``base`` has ``image_build_hash``
    (a fact of the definitions, whether built or not: its own pointer says that)."""
    target = image_link_path(cache_root, build_hash, base)
    _write_if_changed(
        target, json.dumps({"build_hash": build_hash, "base": base, "image": image_build_hash})
    )


def _image_form(
    cache_root: Path, build_hash: str, definition: dict[str, Any], base: str | None
) -> str | None:
    """The build hash that runs ``definition`` in an image (images.image_record's choice):
    its own when it names a base, Dockerfile or context; else its form on ``base``."""
    docker = definition.get("docker") or {}
    if docker.get("base_image") or docker.get("dockerfile") or docker.get("build_context"):
        return build_hash
    if not base:
        return None  # the full path says how to name one
    link = json.loads(image_link_path(cache_root, build_hash, base).read_text(encoding="utf-8"))
    if link.get("build_hash") != build_hash or link.get("base") != base:
        return None
    return str(link["image"])


def _row(
    connection: sqlite3.Connection, name: str, version: str | None
) -> tuple[str, str, str] | None:
    fields = columns(ENVIRONMENT_VERSIONS, "version", "build_hash", "definition")
    row: tuple[str, str, str] | None
    if version is None:
        sql = (
            f"SELECT {fields} FROM {ENVIRONMENT_VERSIONS} "
            "WHERE name = ? AND archived = 0 ORDER BY id DESC LIMIT 1"
        )
        row = connection.execute(sql, (name,)).fetchone()
    else:
        sql = f"SELECT {fields} FROM {ENVIRONMENT_VERSIONS} WHERE name = ? AND version = ?"
        row = connection.execute(sql, (name, version)).fetchone()
    return row


def _newest_lock(connection: sqlite3.Connection, build_hash: str, platform: str) -> Any:
    sql = (
        f"SELECT {columns(LOCKS, 'lock_digest')} FROM {LOCKS} "
        "WHERE build_hash = ? AND platform = ? ORDER BY generation DESC LIMIT 1"
    )
    return connection.execute(sql, (build_hash, platform)).fetchone()


def find_warm(
    registry: Path,
    cache_root: Path,
    reference: str,
    *,
    in_image: bool = False,
    default_base: str | None = None,
) -> Warm | None:
    """The ready materialization for ``reference``, or None to take the full path.
    ``in_image``: its image form, on ``default_base`` when the definition names no base."""
    name, _, version = reference.partition(":")
    if not name or "@" in reference or name.startswith("Kiln-"):
        return None  # curated definitions live in the package: the full path handles them
    connection = open_readonly(registry)
    if connection is None:
        return None
    try:
        row = _row(connection, name, version or None)
        if row is None:
            return None
        found_version, build_hash, definition = row
        if in_image:
            form = _image_form(cache_root, build_hash, json.loads(definition), default_base)
            if form is None:
                return None
            build_hash = form
        pointer = json.loads(pointer_path(cache_root, build_hash).read_text(encoding="utf-8"))
        newest = _newest_lock(connection, build_hash, pointer["platform"])
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
        activation = Activation.from_json(pointer["activation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no marker, or a pointer from before activations were recorded
    interpreter = Path(pointer["interpreter"])
    if marker.get("lock_digest") != pointer["lock_digest"]:
        return None
    if not activation.argv and not interpreter.exists():
        return None  # (an image's interpreter is inside the image: its activation says so)
    if activation.missing() is not None:
        return None  # the full path rebuilds it and says why
    os.utime(path / MARKER)  # last used, for LRU garbage collection
    return Warm(
        pointer["key"],
        path,
        interpreter,
        str(pointer["builder"]),
        definition.get("environment_variables", {}),
        lock_digest=pointer["lock_digest"],
        platform=pointer["platform"],
        activation=activation,
        docker_run=settings(definition.get("docker")),
        **facts,
    )
