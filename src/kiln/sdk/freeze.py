"""Describe an existing virtualenv or conda prefix by asking its own interpreter.

Only the target interpreter knows what is installed in it (its sys.path, its site-packages),
so Kiln runs a small script there and reads JSON back, instead of reading folders by guesswork.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from kiln.errors import InvalidDefinition

# pip freeze leaves out the installer's own tools; so does Kiln.
_TOOLS = {"pip", "setuptools", "wheel", "distribute"}
_PROBE = r"""
import json, sys
from importlib import metadata
found = []
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    if not name:
        continue
    installer = (dist.read_text("INSTALLER") or "").strip()
    direct = dist.read_text("direct_url.json")
    found.append({"name": name, "version": dist.version, "installer": installer,
                  "direct_url": json.loads(direct) if direct else None})
print(json.dumps({"version": list(sys.version_info[:3]), "prefix": sys.prefix, "dists": found}))
"""


@dataclass(frozen=True)
class Frozen:
    python_version: str
    conda_packages: list[str]
    pip_packages: list[str]
    skipped: list[str]


def find_interpreter(prefix_or_interpreter: Path) -> Path:
    path = prefix_or_interpreter.expanduser()
    if path.is_file() and os.access(path, os.X_OK):
        return path
    for candidate in (
        path / "bin" / "python",
        path / "bin" / "python3",
        path / "python.exe",
        path / "Scripts" / "python.exe",
    ):
        if candidate.is_file():
            return candidate
    raise InvalidDefinition(
        f"{path} is neither a Python interpreter nor a virtualenv/conda prefix with bin/python"
    )


def _conda_packages(prefix: Path) -> list[str]:
    """``name=version=build`` for each record in a conda prefix's ``conda-meta``."""
    records = []
    for record in sorted((prefix / "conda-meta").glob("*.json")):
        data = json.loads(record.read_text(encoding="utf-8"))
        records.append(f"{data['name']}={data['version']}={data['build']}")
    return records


def freeze(prefix_or_interpreter: Path, *, timeout: float = 60) -> Frozen:
    interpreter = find_interpreter(prefix_or_interpreter)
    try:
        result = subprocess.run(
            [str(interpreter), "-I", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidDefinition(f"could not run {interpreter}: {exc}") from None
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise InvalidDefinition(
            f"{interpreter} could not list its packages (exit code {result.returncode}: "
            f"{last[0]}); is it a Python 3.8+ interpreter?"
        )
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
        prefix = Path(data["prefix"])
        major, minor, _micro = data["version"]
    except (IndexError, ValueError, KeyError, TypeError):
        raise InvalidDefinition(
            f"{interpreter} is not a Python interpreter (it did not describe itself when run); "
            "pass a virtualenv or conda prefix, or its bin/python"
        ) from None
    is_conda = (prefix / "conda-meta").is_dir()
    first: dict[str, dict[str, Any]] = {}
    for dist in data["dists"]:  # of two copies on sys.path, Python imports the first
        first.setdefault(canonicalize_name(dist["name"]), dist)
    pip, skipped = [], []
    for key, dist in sorted(first.items()):
        if key in _TOOLS or (is_conda and dist["installer"] == "conda"):
            continue
        direct = dist["direct_url"] or {}
        if direct.get("dir_info", {}).get("editable") or str(direct.get("url", "")).startswith(
            "file:"
        ):
            skipped.append(f"{dist['name']} (installed from a local folder or file)")
            continue
        pip.append(f"{dist['name']}=={dist['version']}")
    conda = _conda_packages(prefix) if is_conda else []
    return Frozen(f"{major}.{minor}", conda, pip, skipped)
