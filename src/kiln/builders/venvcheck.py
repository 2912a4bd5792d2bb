"""The checks of a virtualenv (used by the venv and conda builders): the health check right
after a build (with bytecode shared) and before ``kiln cache verify``, and the cheap check
before every reuse."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from kiln.builders import bytecode
from kiln.builders.base import BuildContext, BuildError
from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.packages import parse_pip_entry

_HEALTH = r"""
import importlib, json, sys
from importlib import metadata
wanted = json.loads(sys.argv[1])
problems, count = [], 0
for dist in metadata.distributions():
    count += 1
    try:
        dist.metadata["Name"], dist.version
    except Exception as exc:
        problems.append(f"unreadable metadata in {getattr(dist, '_path', '?')}: {exc}")
for requirement in wanted:
    try:
        dist = metadata.distribution(requirement)
    except metadata.PackageNotFoundError:
        problems.append(f"{requirement} is not installed")
        continue
    tops = (dist.read_text("top_level.txt") or "").split()
    if not tops:
        tops = sorted({str(f).split("/")[0].removesuffix(".py") for f in dist.files or []
                       if not str(f).split("/")[0].endswith((".dist-info", ".data", ".pth"))
                       and (str(f).endswith(".py") or "/" in str(f))} - {"bin", "__pycache__", ".."})
    for module in tops:
        if not module.isidentifier():
            continue
        try:
            importlib.import_module(module)
        except Exception as exc:
            problems.append(f"import {module} (from {requirement}) failed: {type(exc).__name__}: {exc}")
print(json.dumps({"distributions": count, "problems": problems}))
"""


def interpreter(dest: Path) -> Path:
    return dest / "bin" / "python"


def verify_new(dest: Path, ctx: BuildContext, check: Callable[[bool], str | None]) -> None:
    """The health check of a new build (``check(write_bytecode)``), with bytecode shared:
    what earlier builds compiled is linked in first, so the check's imports compile only what
    is new, and that is then shared for the next build (kiln.builders.bytecode)."""
    ctx.log.phase("verify")
    if ctx.bytecode_store is not None:
        bytecode.link_known(dest, ctx.bytecode_store)
    reason = check(ctx.bytecode_store is not None)
    if reason is not None:
        raise BuildError(f"the new environment failed its health check: {reason}")
    if ctx.bytecode_store is not None:
        bytecode.share_written(dest, ctx.bytecode_store)


def direct_names(definition: EnvironmentDefinition) -> list[str]:
    names = []
    for entry in definition.python.pip.packages:
        parsed = parse_pip_entry(entry)
        if parsed.name and (parsed.requirement is None or parsed.requirement.marker is None):
            names.append(parsed.name)
    return names


def health_check(dest: Path, definition: EnvironmentDefinition) -> str | None:
    """The interpreter starts, every distribution's metadata reads, and the top-level modules
    of the pip packages import (in isolated mode, writing no bytecode)."""
    return run_health_check(dest, definition, write_bytecode=False)


def run_health_check(
    dest: Path, definition: EnvironmentDefinition, *, write_bytecode: bool, timeout: float = 300
) -> str | None:
    """``write_bytecode``: the imports may leave ``.pyc`` files (in a new build, for
    kiln.builders.bytecode to share); otherwise the folder is left as it is."""
    python = interpreter(dest)
    if not python.exists():
        return f"{python} is missing"
    flags = ["-I"] if write_bytecode else ["-I", "-B"]
    try:
        result = subprocess.run(
            [str(python), *flags, "-c", _HEALTH, json.dumps(direct_names(definition))],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the interpreter does not start: {exc}"
    if result.returncode != 0:
        return f"the interpreter exited with {result.returncode}: {result.stderr.strip()[-300:]}"
    problems: list[str] = json.loads(result.stdout)["problems"]
    return "; ".join(problems[:5]) if problems else None


def quick_check(dest: Path) -> str | None:
    """Cheap enough for every reuse (no process started): the interpreter, ``pyvenv.cfg`` and
    the base Python folder it points at still exist."""
    python = interpreter(dest)
    if not python.exists():  # follows the symlink: the base interpreter must exist too
        return f"{python} or the interpreter it links to is missing"
    if not (dest / "pyvenv.cfg").is_file():
        return f"{dest / 'pyvenv.cfg'} is missing, so bin/python would run without the packages"
    home = home_of(dest)
    if home is not None and not home.is_dir():
        return f"its base Python folder {home} (pyvenv.cfg home) is missing"
    return None


def home_of(dest: Path) -> Path | None:
    """The base Python folder ``pyvenv.cfg`` names (``home = ...``), if it can be read."""
    try:
        config = (dest / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in config.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return Path(value.strip())
    return None
