"""Containers Kiln starts and stops (a run's script; a deployment's server): the ``podman run``
command line, a stop with a grace period, removal by name, and whether one still exists.

Every container Kiln starts has a name of its own and a label, so that a process other than
the one that started it (``kiln run cancel``, the settling of a run whose watcher died) can
find, stop and remove it. Variables are passed by name only (``--env NAME``, the value taken
from the engine client's environment): a secret never appears on a command line.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kiln.builders.base import BuildError
from kiln.builders.oci import engine

LABEL = "io.kiln.owner"  # every container Kiln starts carries it (value: what it serves)


@dataclass(frozen=True)
class Engine:
    """Where containers run: this machine's podman, or a podman remote connection."""

    connection: str | None = None  # ``podman system connection list``

    def command(self, *args: str) -> list[str]:
        chosen = ["--connection", self.connection] if self.connection else []
        return [engine.tools().podman, *chosen, *args]


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = False

    def option(self) -> str:
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")


@dataclass(frozen=True)
class Container:
    """One container to start: ``image`` running ``command``, removed when it ends."""

    name: str
    image: str
    command: Sequence[str]
    owner: str  # the label's value: "run RUN_ID"
    label: str = LABEL  # the label's key (a deployment's: its containers are found by it)
    variables: Sequence[str] = ()  # names only; the values come from the client's environment
    mounts: Sequence[Mount] = ()
    workdir: str | None = None
    devices: Sequence[str] = ()
    pull: str = "never"  # "missing" where the engine must fetch it (a remote connection)
    options: Sequence[str] = field(default_factory=lambda: ["--network=host"])

    def run_args(self) -> list[str]:
        """``podman run ...`` arguments (after ``podman``)."""
        args = ["run", "--rm", "--name", self.name, f"--pull={self.pull}"]
        args += ["--label", f"{self.label}={self.owner}", *self.options]
        for name in self.variables:
            args += ["--env", name]
        for mount in self.mounts:
            args += ["--volume", mount.option()]
        for device in self.devices:
            args += ["--device", device]
        if self.workdir:
            args += ["--workdir", self.workdir]
        return [*args, self.image, *self.command]


def stop_args(name: str, grace: float) -> list[str]:
    """SIGTERM (the image's stop signal), then SIGKILL after ``grace`` seconds."""
    return ["stop", "--ignore", "--time", str(max(0, math.ceil(grace))), name]


def stop(where: Engine, name: str, grace: float) -> None:
    """Stop ``name`` (gone already: nothing to do); returns once it has stopped."""
    _run(where, stop_args(name, grace), what=f"stopping container {name}")


def stop_in_background(where: Engine, name: str, grace: float) -> subprocess.Popen[bytes]:
    """Start stopping ``name`` and return at once (wait on the process to know it is done)."""
    return subprocess.Popen(
        where.command(*stop_args(name, grace)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def remove(where: Engine, name: str) -> None:
    """Remove ``name`` whatever its state (killed at once if it still runs; gone: nothing)."""
    _run(where, ["rm", "--force", "--ignore", "--time", "0", name], what=f"removing {name}")


def image_exists(where: Engine, image: str) -> bool:
    """Whether the engine has ``image``; BuildError with the engine's message when it cannot
    tell (podman answers 1 and says nothing for "no such image"; a broken configuration is 1
    too, with a message)."""
    done = subprocess.run(
        where.command("image", "exists", image), capture_output=True, text=True, check=False
    )
    if done.returncode == 1 and not done.stderr.strip():
        return False
    if done.returncode != 0:
        raise BuildError(engine.last_message(done.stderr) or f"exit code {done.returncode}")
    return True


def pull(where: Engine, image: str, tls_args: Sequence[str] = ()) -> None:
    _run(where, ["pull", "--quiet", *tls_args, image], what=f"pulling {image}")


def _run(where: Engine, args: Sequence[str], *, what: str) -> None:
    done = subprocess.run(where.command(*args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"{what} failed: {engine.last_message(done.stderr) or done.returncode}")
