"""The container engine (podman) and the containers Kiln starts from an environment's image: a
run's script (compute/container.py) and a deployment's workers (serving/containers.py).
Standard library only, so a warm ``kiln run submit --target container`` starts its container
without importing the builders.

Every container Kiln starts has a name of its own and a label, so that a process other than
the one that started it (``kiln run cancel``, the settling of a run whose watcher died, ``kiln
deploy delete``) can find, stop and remove it. Variables are passed by name only (``--env
NAME``, the value taken from the engine client's environment): a secret never appears on a
command line. Kiln's package is mounted read-only at ``KILN_PATH`` and put on ``PYTHONPATH``,
so nothing of Kiln's enters the image, whose digest stays the environment's.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from kiln.errors import KilnError
from kiln.secrets import expand

INSTALL_HINT = "install podman and skopeo (Debian: `apt-get install podman buildah skopeo`)"
LABEL = "io.kiln.owner"  # every container Kiln starts carries it (value: what it serves)
KILN_PATH = "/kiln/python"  # Kiln's package inside a container: KILN_PATH/kiln, read-only
# podman run's own failures (125: the engine; 126, 127: the command or a device could not be
# set up), told apart from a script's exit code by the engine's "Error: " line last.
ENGINE_FAILED = (125, 126, 127)
IMAGE_FACTS = "image.json"  # what an image build's folder records of its image


class EngineMissing(KilnError):
    """No container engine on this machine: building or running an image is impossible here."""

    exit_code = 5
    status = 503

    def __init__(self, message: str, *, tool: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool  # the tool not found; None: the one named is not usable (the message says)


@dataclass(frozen=True)
class Tools:
    podman: str
    skopeo: str


@cache
def tools() -> Tools:
    """podman and skopeo from PATH (``KILN_PODMAN``/``KILN_SKOPEO`` name others)."""
    found = {}
    for tool in ("podman", "skopeo"):
        variable = f"KILN_{tool.upper()}"
        named = os.environ.get(variable)
        chosen = shutil.which(named or tool)
        if named and not chosen:
            raise EngineMissing(
                f"{variable}={named} is not an executable on this machine: point it at {tool}, "
                "or unset it to use the one on PATH"
            )
        if not chosen:
            raise EngineMissing(
                f"building an image needs {tool}, which is not on this machine: {INSTALL_HINT}; "
                "or build only the Python part on this machine with `--host-only`",
                tool=tool,
            )
        found[tool] = chosen
    return Tools(**found)


def require(purpose: str, otherwise: str = "") -> Tools:
    """The tools, or EngineMissing in one line: what ``purpose`` needs and how to get it (or
    ``otherwise``, what to do without); a ``KILN_PODMAN`` that names no executable says so."""
    try:
        return tools()
    except EngineMissing as exc:
        if exc.tool is None:
            raise
        raise EngineMissing(
            f"{purpose} needs {exc.tool}, which is not on this machine: {INSTALL_HINT}"
            + (f"; {otherwise}" if otherwise else ""),
            tool=exc.tool,
        ) from None


def last_message(error: str) -> str:
    """The last line of a tool's error, without the logger's time and level fields."""
    line = error.strip().splitlines()[-1] if error.strip() else ""
    found = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
    return found.group(1).replace('\\"', '"') if found else line


def engine_failure(code: int, tail: str) -> str | None:
    """The engine's own message when ``podman run`` failed before the command started (the
    exit code is the engine's and its "Error: " line comes last), else None."""
    last = tail.strip().splitlines()[-1] if tail.strip() else ""
    if code in ENGINE_FAILED and last.startswith("Error: "):
        return last.removeprefix("Error: ")
    return None


def read_image_facts(folder: Path) -> dict[str, Any]:
    """The record an image build keeps in its folder (kiln.builders.oci.imagefile writes it)."""
    try:
        data = json.loads((folder / IMAGE_FACTS).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KilnError(
            f"{folder / IMAGE_FACTS} is unreadable ({exc}); rebuild the image"
        ) from None
    if not isinstance(data, dict):
        raise KilnError(f"{folder / IMAGE_FACTS} is not an image record; rebuild the image")
    return data


def by_digest(reference: str, digest: str) -> str:
    """``REPOSITORY@DIGEST`` of ``REPOSITORY:TAG``: what a container runs, exactly."""
    return f"{reference.rsplit(':', 1)[0]}@{digest}"


def variables_inside(
    sources: Sequence[Mapping[str, str]], base: Mapping[str, str]
) -> dict[str, str]:
    """A container's variables from ``sources`` in order (the definition's, then the run's or
    the deployment's), ``${VAR}`` references expanded from ``base`` (the submitter's
    environment) and the ones set before; Kiln's package first on ``PYTHONPATH``."""
    found: dict[str, str] = {}
    for source in sources:
        for key, value in source.items():
            found[key] = expand(value, {**base, **found}, default="")
    found["PYTHONPATH"] = ":".join(p for p in (KILN_PATH, found.get("PYTHONPATH")) if p)
    return found


@dataclass(frozen=True)
class Engine:
    """Where containers run: this machine's podman, or a podman remote connection."""

    connection: str | None = None  # ``podman system connection list``

    def command(self, *args: str) -> list[str]:
        chosen = ["--connection", self.connection] if self.connection else []
        return [tools().podman, *chosen, *args]


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
    cidfile: Path | None = None  # podman writes the container's id there once it made it

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
        if self.cidfile is not None:
            args += ["--cidfile", str(self.cidfile)]
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


def remove(where: Engine, names: Sequence[str], *, grace: float = 0.0) -> None:
    """Stop (SIGTERM, SIGKILL after ``grace`` seconds) and remove these containers whatever
    their state; those already gone are no error."""
    if names:
        seconds = str(max(0, math.ceil(grace)))
        args = ["rm", "--force", "--ignore", "--time", seconds, *names]
        _run(where, args, what=f"removing {' '.join(names)}")


def listed(where: Engine, label: str) -> list[str]:
    """The names of the containers (running or not) that carry ``label`` (KEY=VALUE)."""
    return _run(
        where,
        ["ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}"],
        what="listing containers",
    ).split()


def image_exists(where: Engine, image: str) -> bool:
    """Whether the engine has ``image``; KilnError with the engine's message when it cannot
    tell (podman answers 1 and says nothing for "no such image"; a broken configuration is 1
    too, with a message)."""
    done = subprocess.run(
        where.command("image", "exists", image), capture_output=True, text=True, check=False
    )
    if done.returncode == 1 and not done.stderr.strip():
        return False
    if done.returncode != 0:
        raise KilnError(last_message(done.stderr) or f"exit code {done.returncode}")
    return True


def pull(where: Engine, image: str, tls_args: Sequence[str] = ()) -> None:
    _run(where, ["pull", "--quiet", *tls_args, image], what=f"pulling {image}")


def _run(where: Engine, args: Sequence[str], *, what: str) -> str:
    done = subprocess.run(where.command(*args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KilnError(f"{what} failed: {last_message(done.stderr) or done.returncode}")
    return done.stdout
