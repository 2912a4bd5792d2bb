"""Find the Python interpreter a definition asks for among those installed on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
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


def own(request: str) -> Target | None:
    """Kiln's own interpreter (the one its virtualenv was made from) when it is a plain CPython
    build that ``request`` (``3``, ``3.11``, ``3.11.7``, or none) names: installed on this machine
    and known without asking uv or starting it. ``uv python find`` queries every Python on
    ``$PATH`` (through pyenv's shell shims, where there are some) and then a probe starts the
    one found: 0.15 to 0.3 s on a fresh cache, most of a small build from a stored lock."""
    parts = request.split(".") if request else []
    if not (len(parts) <= 3 and all(part.isdigit() for part in parts)):
        return None
    if [int(part) for part in parts] != list(sys.version_info[: len(parts)]):
        return None
    if sys.implementation.name != "cpython" or getattr(sys, "abiflags", None) != "":
        return None  # uv matches a plain request to no free-threaded or debug build either
    base = Path(getattr(sys, "_base_executable", None) or sys.executable)
    if not base.is_file():
        return None
    import platform

    machine = platform.machine().lower()
    major, minor, micro = sys.version_info[:3]
    return Target(base, f"{major}.{minor}.{micro}", f"{sys.platform}-{machine}-cp{major}{minor}")


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
    """The interpreter for ``python.version`` (or Kiln's own, else uv's default). One on this
    machine first; with ``downloads`` (the workspace's ``python_downloads: automatic``), a patch
    release the machine lacks (Azure's files pin them: ``3.8.13``) is installed by uv as a
    managed Python, from ``mirror`` when set (an offline copy of uv's Python downloads).

    ``uv python find`` and the probe cost ~0.2 s, so the answer is remembered beside uv's
    cache per request, and reused while that interpreter file is unchanged (see
    kiln.builders.found). Where nothing is remembered, Kiln's own interpreter is the answer
    when it satisfies the request (``own``), else the one uv finds first."""
    request = version or ""
    remembered = found.recall(cache_dir.parent, request)
    if remembered is not None:
        return remembered
    mine = own(request)
    if mine is not None:
        found.remember(cache_dir.parent, request, mine)
        return mine
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
