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


def find(
    version: str | None, cache_dir: Path, *, downloads: bool = False, mirror: str | None = None
) -> Target:
    """The interpreter for ``python.version`` (or uv's default). One on this machine first;
    with ``downloads`` (the workspace's ``python_downloads: automatic``), a patch release the
    machine lacks (Azure's files pin them: ``3.8.13``) is installed by uv as a managed Python,
    from ``mirror`` when set (an offline copy of uv's Python downloads).

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
    if result.returncode == 0 and result.stdout.strip():
        path = Path(result.stdout.strip())
    elif downloads and request:
        path = _download(request, cache_dir, mirror)
    else:
        listing = "; ".join(installed(cache_dir)) or "none"
        raise BuildError(
            f"`python.version` {version!r}: no such interpreter on this machine (found: {listing}); "
            "install that Python, change python.version, or let uv install it: "
            "`kiln init --python-downloads automatic` (or KILN_PYTHON_DOWNLOADS=automatic)"
        )
    target = describe(path)
    found.remember(cache_dir.parent, request, target)
    return target


def _download(request: str, cache_dir: Path, mirror: str | None) -> Path:
    """``uv python install`` the requested version as a uv-managed Python, then find it."""
    from kiln.secrets import redact

    env = {**uv_environment(cache_dir), "UV_PYTHON_DOWNLOADS": "automatic"}
    if mirror:
        env["UV_PYTHON_INSTALL_MIRROR"] = mirror
    install = subprocess.run(
        [uv_binary(), "python", "install", request],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if install.returncode != 0:
        lines = [line.strip() for line in install.stderr.splitlines() if line.strip()]
        reason = redact(" ".join(lines[-2:]))[-400:] or f"exit {install.returncode}"
        listing = "; ".join(installed(cache_dir)) or "none"
        source = "the workspace's python_mirror" if mirror else "uv's download source"
        raise BuildError(
            f"`python.version` {request!r}: not on this machine (found: {listing}) and uv could "
            f"not install it from {source}: {reason}; install that Python, set "
            "`kiln init --python-mirror URL` (KILN_PYTHON_MIRROR) to a reachable copy of uv's "
            "Python downloads, or change python.version"
        )
    found = subprocess.run(
        [uv_binary(), "python", "find", "--python-preference", "only-managed", request],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if found.returncode != 0 or not found.stdout.strip():
        raise BuildError(f"uv installed Python {request} but cannot find it: {found.stderr[-300:]}")
    return Path(found.stdout.strip())
