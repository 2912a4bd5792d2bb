"""Export a stored pip lock in a form plain tools install: a hashed requirements file or the
PEP 751 ``pylock.toml`` (pip, uv). Which formats a builder's lock exports to is the builder's
fact (``Builder.export_lock``); the builders share these writers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kiln.errors import WorkspaceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMATS = ("requirements", "pylock", "conda")  # every export format some builder offers
PYLOCK = "pylock.toml"
INSTALLED = "installed.json"  # what an existing interpreter has: names and versions only
REFRESH = "`kiln env build NAME --refresh` makes a new generation from the definition"


class CorruptLock(WorkspaceError):
    """A stored lock whose text does not parse (edited by hand, truncated): a workspace
    problem with a fix, never a crash."""

    one_line = True


def parse_lock_text(lock_format: str, lock_text: str, *, header: str) -> Any:
    """The parsed TOML (pylock) or JSON (any other format) of a stored lock; CorruptLock
    naming the lock (``header``) when it does not parse."""
    try:
        if lock_format.endswith(".toml"):
            return tomllib.loads(lock_text)
        return json.loads(lock_text)
    except ValueError as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        kind = "TOML" if lock_format.endswith(".toml") else "JSON"
        raise CorruptLock(
            f"{header}: the stored {lock_format} lock is not valid {kind} ({exc}); {REFRESH}"
        ) from None


@contextmanager
def exporting(header: str) -> Iterator[None]:
    """A lock that parses but lacks what an export reads (a field removed or retyped by hand)
    is CorruptLock naming the lock, never a KeyError or TypeError."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise CorruptLock(
            f"{header}: the stored lock is not one this export can read "
            f"({type(exc).__name__}: {exc}); {REFRESH}"
        ) from None


def _hashes(package: dict[str, Any]) -> list[str]:
    found = []
    for artifact in [*package.get("wheels", []), package.get("sdist") or {}]:
        for algorithm, value in (artifact.get("hashes") or {}).items():
            found.append(f"{algorithm}:{value}")
    return sorted(set(found))


def to_requirements(lock_format: str, lock_text: str, *, header: str) -> str:
    """``name==version --hash=...`` for every locked package (``pip install --require-hashes``)."""
    with exporting(header):
        return _requirements(lock_format, lock_text, header=header)


def _requirements(lock_format: str, lock_text: str, *, header: str) -> str:
    lines = [f"# {header}"]
    if lock_format == INSTALLED:  # versions only
        packages = parse_lock_text(lock_format, lock_text, header=header)
        lines += [f"{p['name']}=={p['version']}" for p in packages]
        return "\n".join(lines) + "\n"
    for package in parse_lock_text(lock_format, lock_text, header=header).get("packages", []):
        archive = package.get("archive") or package.get("vcs") or package.get("directory")
        if archive and archive.get("path"):  # a local wheel, relative to the lock's folder
            hashes = [f"--hash={a}:{v}" for a, v in sorted((archive.get("hashes") or {}).items())]
            lines.append(" \\\n    ".join([f"./{archive['path']}", *hashes]))
            continue
        if archive and archive.get("url"):
            lines.append(f"{package['name']} @ {archive['url']}")
            continue
        hashes = _hashes(package)
        line = f"{package['name']}=={package['version']}"
        lines.append(" \\\n    ".join([line, *(f"--hash={h}" for h in hashes)]))
    return "\n".join(lines) + "\n"


def export_pip_lock(lock_format: str, lock_text: str, fmt: str, *, header: str) -> str:
    """A ``pylock.toml`` or ``installed.json`` lock as ``requirements`` or ``pylock``."""
    if fmt == "requirements":
        return to_requirements(lock_format, lock_text, header=header)
    if fmt != "pylock":
        raise ValueError(
            f"this lock is {lock_format}, without conda packages; use --format requirements"
        )
    if lock_format != PYLOCK:
        raise ValueError(f"this lock is {lock_format}; export it with --format requirements")
    return f"# {header}\n{lock_text}"
