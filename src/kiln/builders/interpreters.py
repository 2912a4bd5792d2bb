"""Find the Python interpreter a definition asks for among those installed on this machine."""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path

from kiln.builders import found
from kiln.builders.base import BuildError, Target
from kiln.builders.uvtool import uv_binary, uv_environment

_PROBE = (
    "import json, platform, sys; print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], "
    "'platform': '%s-%s-%s%d%d' % (sys.platform, platform.machine().lower(), "
    "sys.implementation.name[:2] if sys.implementation.name == 'cpython' else sys.implementation.name, "
    "*sys.version_info[:2])}))"
)


def installed(cache_dir: Path) -> list[str]:
    """'3.11.7 (/usr/bin/python3.11)' for each interpreter uv can see, for error messages."""
    result = subprocess.run(
        [
            uv_binary(),
            "python",
            "list",
            "--only-installed",
            "--python-preference",
            "only-system",
            "--output-format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=uv_environment(cache_dir),
        check=False,
    )
    try:
        found = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return []
    return sorted({f"{p['version']} ({p['path']})" for p in found if p.get("path")})


@cache
def describe(interpreter: Path) -> Target:
    result = subprocess.run(
        [str(interpreter), "-I", "-c", _PROBE], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"{interpreter} does not start: {result.stderr.strip()[-300:]}")
    data = json.loads(result.stdout)
    return Target(interpreter, data["version"], data["platform"])


def find(version: str | None, cache_dir: Path) -> Target:
    """The interpreter for ``python.version`` (or uv's default), never downloaded.

    ``uv python find`` and the probe cost ~0.2 s, so the answer is remembered beside uv's
    cache per request, and reused while that interpreter file is unchanged (see
    kiln.builders.found)."""
    request = version or ""
    remembered = found.recall(cache_dir.parent, request)
    if remembered is not None:
        return remembered
    args = [
        uv_binary(),
        "python",
        "find",
        "--system",  # never an active virtualenv or a .venv near the current directory
        "--python-preference",
        "only-system",
        *([request] if request else []),
    ]
    result = subprocess.run(
        args, capture_output=True, text=True, env=uv_environment(cache_dir), check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        listing = "; ".join(installed(cache_dir)) or "none"
        raise BuildError(
            f"`python.version` {version!r}: no such interpreter on this machine (found: {listing}); "
            "install that Python or change python.version"
        )
    target = describe(Path(result.stdout.strip()))
    found.remember(cache_dir.parent, request, target)
    return target
