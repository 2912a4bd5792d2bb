"""The ``user-managed`` builder: installs nothing. It checks that the given interpreter exists
and records what it has (its installed distributions become the lock), so runs still say
exactly which packages they used."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.builders import interpreters
from kiln.builders.base import Activation, BuildContext, BuildError, Lock, Target
from kiln.builders.uvtool import uv_version
from kiln.lockexport import export_pip_lock

if TYPE_CHECKING:
    from kiln.environment.definition import EnvironmentDefinition

name = "user-managed"
# What build makes stays on this machine: another machine installs the lock itself.
shared = False
LOCK_FORMAT = "installed.json"
_INSTALLED = (
    "import json; from importlib import metadata; "
    "print(json.dumps(sorted({(d.metadata['Name'], d.version) for d in metadata.distributions() if d.metadata['Name']})))"
)


def target(definition: EnvironmentDefinition, ctx: BuildContext) -> Target:
    path = Path(definition.python.interpreter_path or "python")
    if not path.is_absolute() or not path.exists():
        raise BuildError(
            f"`python.interpreter_path` {str(path)!r} does not exist; give the absolute path of the "
            "interpreter that has the packages"
        )
    return interpreters.describe(path)


def resolve(definition: EnvironmentDefinition, target: Target, ctx: BuildContext) -> Lock:
    ctx.log.write(f"user-managed: recording what {target.interpreter} has\n")
    result = subprocess.run(
        [str(target.interpreter), "-I", "-c", _INSTALLED],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(
            f"{target.interpreter} exited with {result.returncode}: {result.stderr.strip()[-300:]}"
        )
    packages = [{"name": n, "version": v} for n, v in json.loads(result.stdout)]
    return Lock(LOCK_FORMAT, json.dumps(packages, indent=1), packages, "kiln")


def build(
    definition: EnvironmentDefinition,
    lock: Lock,
    target: Target,
    dest: Path,
    ctx: BuildContext,
) -> None:
    """Nothing to install: the materialization only records which interpreter to use."""
    (dest / "interpreter").write_text(str(target.interpreter), encoding="utf-8")
    ctx.log.phase("verify")
    reason = health_check(dest, definition)
    if reason is not None:
        raise BuildError(f"the new environment failed its health check: {reason}")


def interpreter(dest: Path) -> Path:
    return Path((dest / "interpreter").read_text(encoding="utf-8").strip())


def health_check(dest: Path, definition: EnvironmentDefinition) -> str | None:
    return quick_check(dest)


def quick_check(dest: Path) -> str | None:
    """The interpreter still exists (what it has is the user's business)."""
    python = interpreter(dest)
    return None if python.exists() else f"{python} no longer exists"


def activation(dest: Path) -> Activation:
    """Nothing to change: the interpreter is run as it is, and must still exist."""
    return Activation(requires=(str(interpreter(dest)),))


def remove(dest: Path) -> None:
    """Nothing: the interpreter is the user's."""


def tool_versions() -> dict[str, str]:
    return {"uv": uv_version()}


def export_lock(lock: Lock, fmt: str, *, header: str) -> str:
    """``requirements`` only: the versions found, without hashes or sources."""
    return export_pip_lock(lock.format, lock.text, fmt, header=header)
