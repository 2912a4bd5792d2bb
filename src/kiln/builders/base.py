"""The small interface every builder implements, and what builds report.

A builder knows *how* to turn a definition into a materialization; the cache decides *whether*
to build (see cache.py). Each builder is one module of plain functions registered in
``kiln.builders.choice.BUILDERS``; the docstrings of ``Builder`` below are the builder documentation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kiln.activation import Activation
from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.environment.definition import EnvironmentDefinition

__all__ = ["Activation", "BuildContext", "BuildError", "Builder", "Lock", "Log", "Target"]


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
    """Where a build writes what it does. ``phase`` moves the progress display along;
    ``detail`` says what the phase is doing now, for the display only."""

    def phase(self, name: str) -> None: ...

    def detail(self, text: str) -> None: ...

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
    # Set for ``build`` only. ``final``: where the built folder is renamed to afterwards (a
    # builder whose files embed their prefix writes it into them). ``bytecode_store``: the
    # bytecode shared between builds (see kiln.builders.bytecode), for builders that have any.
    final: Path | None = None
    bytecode_store: Path | None = None
    # For builders that make images: the workspace's image registry (a URL, None for the
    # engine store only) and the labels that name what an image holds (build hash, lock).
    image_registry: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # ``refresh_base``: ask for the digest a base image's tag names now (a new lock pins it);
    # ``pull_only``: take a prebuilt result from the registry, never build.
    refresh_base: bool = False
    pull_only: bool = False
    no_cache: bool = False  # build anew: no registry reuse, no engine layer cache
    # The platforms the workspace holds locks of this build hash for, newest first: a builder
    # whose target is costly to find (an image's base) may take its platform from there.
    known_platforms: tuple[str, ...] = ()
    # The folder of ``docker.build_context``, staged from the artifact store (None without one).
    build_context: Path | None = None
    # A Python the machine lacks: installed by uv (``python_downloads``), from ``python_mirror``
    # when set; otherwise a missing interpreter is an error that says what was found.
    python_downloads: bool = False
    python_mirror: str | None = None
    # Set for ``build``: a build of this very lock by this builder succeeded already (anywhere
    # in the workspace), so its dependencies were found consistent and need no second check.
    lock_checked: bool = False


class Builder(Protocol):
    """A builder: one module of plain functions, registered in ``kiln.builders.choice.BUILDERS`` under
    its ``name``. The core calls ``target``, then ``resolve`` once per build hash and platform
    (the lock is stored in the workspace), then ``build`` into a temporary folder that the cache
    renames into place after writing its ready marker. Nothing outside ``kiln.builders`` knows
    which builders exist: what running in a build takes is recorded from ``activation``."""

    name: str
    # Whether what ``build`` makes is shared through the workspace (an image pushed to its
    # registry): then a machine that finds another one building it waits for that build
    # (the build lease) and reuses the result instead of building it too.
    shared: bool

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
    ) -> None:
        """Install exactly ``lock`` into the empty folder ``dest``, then health-check it: raise
        BuildError when unhealthy (right after a build, a failure is a bug, never reused).
        ``dest`` is renamed to ``ctx.final`` afterwards."""
        ...

    def health_check(self, dest: Path, definition: EnvironmentDefinition) -> str | None:
        """None when the built folder is healthy, else why not (interpreter starts, metadata,
        top-level imports). Leaves the folder as it is (``kiln cache verify``)."""
        ...

    def quick_check(self, dest: Path) -> str | None:
        """A check cheap enough for every reuse (no process started); a reason means rebuild."""
        ...

    def interpreter(self, dest: Path) -> Path:
        """The Python interpreter of a materialization."""
        ...

    def activation(self, dest: Path) -> Activation:
        """How to run in the ready materialization at ``dest`` (an argv prefix, environment
        changes, the files a warm reuse checks). Recorded after every build for the warm
        path, so it must not depend on anything but the folder."""
        ...

    def remove(self, dest: Path) -> None:
        """Remove what the build made outside ``dest`` (an image in an engine's store, say);
        the cache removes ``dest`` itself afterwards. Called with the cache's lock held."""
        ...

    def tool_versions(self) -> dict[str, str]:
        """The tools that built it and their versions, recorded with each build."""
        ...

    def export_lock(self, lock: Lock, fmt: str, *, header: str) -> str:
        """``lock`` in the export format ``fmt`` (kiln.lockexport.FORMATS) with a ``header``
        comment; ValueError naming the formats that work when this lock has no such form."""
        ...
