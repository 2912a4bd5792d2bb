"""The small interface every builder implements, and what builds report.

A builder knows *how* to turn a definition into a materialization; the cache decides *whether*
to build (see cache.py). Each builder is one module of plain functions registered in
``kiln.builders.BUILDERS``; their docstrings are the builder documentation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kiln.environment.definition import EnvironmentDefinition
from kiln.errors import KilnError


class BuildError(KilnError):
    """A build step failed. The message names the command, its exit code and last lines."""

    exit_code = 6
    status = 500


@dataclass(frozen=True)
class Target:
    """The interpreter a build is for and the platform key its lock is stored under."""

    interpreter: Path
    python_version: str  # "3.11.7"
    platform: str  # "linux-x86_64-cp311"


@dataclass(frozen=True)
class Lock:
    """An exact resolution: ``text`` is what installs it (pylock.toml for the venv builder)."""

    format: str
    text: str
    packages: list[dict[str, str]] = field(default_factory=list)  # [{"name", "version"}]
    resolver: str = ""


class Log(Protocol):
    """Where a build writes what it does. ``phase`` moves the progress display along."""

    def phase(self, name: str) -> None: ...

    def write(self, text: str) -> None: ...


@dataclass(frozen=True)
class BuildContext:
    """What every builder step gets: where to log, uv's cache, and secret values by name (used
    to expand ``${VAR}`` references and redacted from everything written)."""

    log: Log
    uv_cache: Path
    secrets: dict[str, str] = field(default_factory=dict)
    # Local wheels staged from the artifact store: ``wheel_root`` is ``<cache root>/wheels``,
    # ``local_wheels`` maps each local pip entry (a path or ``wheel:NAME``) to its staged file
    # relative to it ("<sha256>/<file name>"). Builders resolve and install with uv's files
    # inside ``wheel_root``, so the lock records that relative path and installs anywhere.
    wheel_root: Path | None = None
    local_wheels: dict[str, str] = field(default_factory=dict)


class Builder(Protocol):
    """A builder module. ``name`` is its key in ``kiln.builders.BUILDERS``."""

    name: str

    def target(self, definition: EnvironmentDefinition, ctx: BuildContext) -> Target:
        """The interpreter and platform for this definition on this machine."""
        ...

    def resolve(self, definition: EnvironmentDefinition, target: Target, ctx: BuildContext) -> Lock:
        """Resolve the definition into an exact lock (every package, transitive ones too)."""
        ...

    def build(
        self,
        definition: EnvironmentDefinition,
        lock: Lock,
        target: Target,
        dest: Path,
        ctx: BuildContext,
        *,
        final: Path | None = None,
    ) -> None:
        """Install exactly ``lock`` into the empty folder ``dest``. It is renamed to ``final``
        afterwards; a builder whose files embed their prefix writes ``final`` into them."""
        ...

    def health_check(
        self, dest: Path, definition: EnvironmentDefinition, *, write_bytecode: bool = False
    ) -> str | None:
        """None when healthy, else why not (interpreter starts, metadata, top-level imports).
        ``write_bytecode``: the imports may leave ``.pyc`` files (in a new build, for
        kiln.builders.bytecode to share); otherwise the folder is left as it is."""
        ...

    def quick_check(self, dest: Path) -> str | None:
        """A check cheap enough for every reuse (no process started)."""
        ...

    def interpreter(self, dest: Path) -> Path:
        """The Python interpreter of a materialization."""
        ...
