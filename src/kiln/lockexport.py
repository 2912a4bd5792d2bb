"""Export a stored lock in a form plain tools install: a hashed requirements file or the PEP 751
``pylock.toml`` (pip, uv), and for conda builds an ``@EXPLICIT`` file (conda, micromamba, pixi)
holding the exact conda packages by URL and sha256."""

from __future__ import annotations

import json
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMATS = ("requirements", "pylock", "conda")


def _hashes(package: dict[str, Any]) -> list[str]:
    found = []
    for artifact in [*package.get("wheels", []), package.get("sdist") or {}]:
        for algorithm, value in (artifact.get("hashes") or {}).items():
            found.append(f"{algorithm}:{value}")
    return sorted(set(found))


def to_requirements(lock_format: str, lock_text: str, *, header: str) -> str:
    """``name==version --hash=...`` for every locked package (``pip install --require-hashes``)."""
    lines = [f"# {header}"]
    if lock_format == "installed.json":  # a user-managed interpreter: versions only
        lines += [f"{p['name']}=={p['version']}" for p in json.loads(lock_text)]
        return "\n".join(lines) + "\n"
    for package in tomllib.loads(lock_text).get("packages", []):
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


def _conda_explicit(entries: list[dict[str, Any]], header: str) -> str:
    lines = [f"# {header}", "@EXPLICIT"]
    lines += [f"{e['url']}#{e['sha256']}" for e in entries]
    return "\n".join(lines) + "\n"


def export(lock_format: str, lock_text: str, fmt: str, *, header: str) -> str:
    if lock_format == "kiln-conda.json":  # conda records plus the pip part as pylock.toml
        data = json.loads(lock_text)
        if fmt == "conda":
            return _conda_explicit(data["conda"], header)
        pip = data.get("pip") or 'lock-version = "1.0"\ncreated-by = "kiln"\n'
        note = f"{header}; the pip part only (export the conda part with --format conda)"
        return export("pylock.toml", pip, fmt, header=note)
    if fmt == "conda":
        raise ValueError(
            f"this lock is {lock_format}, without conda packages; use --format requirements"
        )
    if fmt == "pylock":
        if lock_format != "pylock.toml":
            raise ValueError(f"this lock is {lock_format}; export it with --format requirements")
        return f"# {header}\n{lock_text}"
    return to_requirements(lock_format, lock_text, header=header)
