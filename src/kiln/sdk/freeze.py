"""Describe an existing virtualenv or conda prefix by asking its own interpreter.

Only the target interpreter knows what is installed in it (its sys.path, its site-packages),
so Kiln runs a small script there and reads JSON back, instead of reading folders by guesswork.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from kiln.errors import InvalidDefinition, NotFound

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


def _conda_records(prefix: Path) -> list[dict[str, Any]]:
    records = []
    for record in sorted((prefix / "conda-meta").glob("*.json")):
        data: dict[str, Any] = json.loads(record.read_text(encoding="utf-8"))
        records.append(data)
    return records


def _conda_packages(prefix: Path, *, builds: bool) -> list[str]:
    """``name=version=build`` (or ``name=version``, as ``conda env export --no-builds``) for
    each record in a conda prefix's ``conda-meta``; python itself is the version field."""
    return [
        f"{r['name']}={r['version']}" + (f"={r['build']}" if builds else "")
        for r in _conda_records(prefix)
        if r["name"] != "python"
    ]


def conda_channels(prefix: Path) -> list[str]:
    """The channels a prefix's packages came from, in order of first use; a channel on
    anaconda.org by its name, as ``conda env export`` writes it."""
    channels: list[str] = []
    for record in _conda_records(prefix):
        channel = str(record.get("channel") or "").rstrip("/")
        channel = channel.removeprefix("https://conda.anaconda.org/")
        if channel and channel not in channels:
            channels.append(channel)
    return channels


def find_conda_prefix(name_or_path: str) -> Path:
    """The prefix of a conda environment named as ``conda env list`` names it, or its path."""
    path = Path(name_or_path).expanduser()
    if (path / "conda-meta").is_dir():
        return path
    places = [Path(p) for p in os.environ.get("CONDA_ENVS_PATH", "").split(os.pathsep) if p]
    for root in (os.environ.get("CONDA_PREFIX"), os.environ.get("CONDA_ROOT")):
        if root:
            places.append(Path(root) / "envs")
    places += [Path.home() / ".conda" / "envs", *_conda_env_list()]
    for place in places:
        for candidate in (place / name_or_path, place):
            if candidate.name == name_or_path and (candidate / "conda-meta").is_dir():
                return candidate
    raise NotFound(
        f"no conda environment named {name_or_path!r} (looked in {', '.join(map(str, places))}); "
        "pass its name as `conda env list` shows it, or the path of its prefix"
    )


def _conda_env_list() -> list[Path]:
    """The prefixes ``conda env list`` knows, when conda is installed."""
    conda = shutil.which("conda")
    if conda is None:
        return []
    try:
        result = subprocess.run(
            [conda, "env", "list", "--json"], capture_output=True, text=True, timeout=60
        )
        return [Path(p) for p in json.loads(result.stdout).get("envs", [])]
    except (OSError, subprocess.TimeoutExpired, ValueError, AttributeError):
        return []


def freeze(prefix_or_interpreter: Path, *, timeout: float = 60, builds: bool = True) -> Frozen:
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
    conda = _conda_packages(prefix, builds=builds) if is_conda else []
    return Frozen(f"{major}.{minor}", conda, pip, skipped)
