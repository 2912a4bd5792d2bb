"""Container deployments: each worker of the scoring runtime is a container of the
environment's image, started by the supervisor as ``podman run`` (attached, so the worker's
output is the deployment's log and podman forwards SIGTERM to it).

The supervisor keeps the listening socket, as for process workers, and hands it to each
container as file descriptor 3 (``--preserve-fds``): the container publishes no port, the
scoring URI never changes, and an update starts the new containers on the same socket before
the old ones stop, so no request is refused. (Publishing ``-p 127.0.0.1:PORT:PORT`` would tie
the port to one container: the next one could not take it until the old one let go.)

Kiln's package is mounted read-only at ``/kiln/python/kiln`` and put on ``PYTHONPATH``: the
scoring runtime is standard library only, so it runs on the image's Python and nothing of
Kiln's enters the image, whose digest stays the environment's. The source snapshot and the
models are mounted read-only. Variables are passed by name only (``--env NAME``, the value in
podman's own environment): a secret never appears on a command line.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from kiln import dockerrun
from kiln.compute.runfolder import kiln_package
from kiln.errors import KilnError
from kiln.podman import ENGINE_FAILED as ENGINE_FAILED
from kiln.podman import KILN_PATH, Container, Engine, Mount, by_digest, listed, variables_inside
from kiln.podman import remove as remove_containers

if TYPE_CHECKING:
    from kiln.buildlog import Reporter
    from kiln.catalog import EnvironmentRecord
    from kiln.ready import Ready
    from kiln.serving.specs import DeploymentSpec
    from kiln.workspace import Workspace

LABEL = "io.kiln.deployment"  # "WORKSPACE-KEY/NAME": finds a deployment's containers
SOURCE = PurePosixPath("/kiln/src")
MODELS = PurePosixPath("/kiln/models")
# Where --preserve-fds puts the socket and the ready pipe, and the liveness socket after them.
LISTEN_FD, READY_FD, HEALTH_FD = 3, 4, 5


@dataclass(frozen=True)
class Image:
    reference: str  # localhost/kiln/env:KEY
    digest: str  # the manifest digest: containers run ``REPOSITORY@DIGEST``
    interpreter: str  # the environment's Python inside the image
    options: tuple[str, ...] = ()  # from the definition's docker run settings (kiln.dockerrun)

    @property
    def pinned(self) -> str:
        return by_digest(self.reference, self.digest)


def ready_image(
    workspace: Workspace, record: EnvironmentRecord, reporter: Reporter | None
) -> tuple[Ready, Image]:
    """The image of ``record`` (on the workspace's default base when it names none): present,
    pulled from the workspace registry, or built, as ``kiln image build`` gets it; held in the
    cache while the generation serves, so garbage collection leaves it alone."""
    from kiln.images import image_record
    from kiln.podman import read_image_facts
    from kiln.ready import ready_and_held

    options = _options(record)
    ready = ready_and_held(workspace, record=image_record(workspace, record), reporter=reporter)
    try:
        facts = read_image_facts(ready.path)
        if not ready.activation.argv or "digest" not in facts:
            raise KilnError(f"{record.reference} did not build as an image; rebuild it")
    except BaseException:
        ready.release()
        raise
    image = Image(str(facts["reference"]), str(facts["digest"]), str(ready.interpreter), options)
    return ready, image


def _options(record: EnvironmentRecord) -> tuple[str, ...]:
    """The definition's docker run settings as ``podman run`` options (InvalidRequest
    naming the item a deployment cannot take)."""
    run = dockerrun.settings(record.definition.docker.model_dump())
    return tuple(dockerrun.podman_options(run, deployment=True))


def label(workspace: Workspace, name: str) -> str:
    """The label value of a deployment's containers: the same name in two workspaces differs
    (a server's: this machine's local side of it, where the deployment's folder is)."""
    from kiln.compute.runfolder import local_side

    key = hashlib.sha256(str(local_side(workspace).root.resolve()).encode()).hexdigest()[:12]
    return f"{key}/{name}"


def container_name(name: str, generation: int) -> str:
    """A new container's name (a random suffix: a restarted worker never meets its
    predecessor's name, which podman frees only once it has removed that container)."""
    return f"kiln-deploy-{name}-g{generation}-{secrets.token_hex(3)}"


def variables(
    definition: Mapping[str, str], deployment: Mapping[str, str], base: Mapping[str, str]
) -> dict[str, str]:
    """The container's variables, ``${VAR}`` references expanded from ``base`` (the
    supervisor's environment): the definition's, the deployment's, then Kiln's own."""
    found = variables_inside([definition, deployment], base)
    found["PYTHONUNBUFFERED"] = "1"
    found["PYTHONDONTWRITEBYTECODE"] = "1"  # the mounts are read-only
    return found


def run_argv(
    image: Image,
    *,
    name: str,
    owner: str,
    names: Sequence[str],
    source: Path,
    models: Path,
    command: Sequence[str],
    health: bool = False,
) -> list[str]:
    """``podman run`` of one worker: ``command`` (the runtime's arguments, paths inside the
    container) on the image's Python, the socket and ready pipe as fds 3 and 4 (and with
    ``health``, the liveness socket as fd 5)."""
    mounts = [(kiln_package(), f"{KILN_PATH}/kiln"), (source, SOURCE), (models, MODELS)]
    runtime = [image.interpreter, "-m", "kiln.serving.runtime", *command]
    spec = Container(
        name=name,
        image=image.pinned,
        command=[
            *runtime,
            *("--listen-fd", str(LISTEN_FD), "--ready-fd", str(READY_FD)),
            *(("--health-listen-fd", str(HEALTH_FD)) if health else ()),
        ],
        owner=owner,
        label=LABEL,
        variables=names,
        mounts=[Mount(host, str(inside), read_only=True) for host, inside in mounts],
        workdir=str(SOURCE),
        # No published port: fd 3. The definition's options come last but cannot undo these.
        options=["--preserve-fds", "3" if health else "2", *image.options],
    )
    return Engine().command(*spec.run_args())


def move_fds(listen_fd: int, ready_fd: int, health_fd: int | None = None) -> None:
    """In the podman process before exec: the socket and the ready pipe as fds 3 and 4, the
    liveness socket as fd 5. The supervisor keeps fds 3 to 5 reserved (``reserve_fds``), so
    none of these fds nor subprocess's own error pipe can be there already."""
    os.dup2(listen_fd, LISTEN_FD)
    os.dup2(ready_fd, READY_FD)
    if health_fd is not None:
        os.dup2(health_fd, HEALTH_FD)


def reserve_fds() -> None:
    """Occupy fds 3 to 5 (when free) with /dev/null, so nothing the supervisor opens lands
    there: ``move_fds`` overwrites them in each container worker's podman process."""
    while (fd := os.open(os.devnull, os.O_RDONLY)) <= HEALTH_FD:
        pass  # kept open: reserved
    os.close(fd)


def remove(names: Sequence[str], *, grace: float) -> None:
    """Stop (SIGTERM, SIGKILL after ``grace`` seconds) and remove these containers; those
    already gone are no error."""
    remove_containers(Engine(), names, grace=grace)


def remaining(owner: str) -> list[str]:
    """The containers (running or not) of the deployment ``owner`` labels."""
    return listed(Engine(), f"{LABEL}={owner}")


def remove_leftovers(workspace: Workspace, name: str, *, grace: float) -> None:
    """Every container of the deployment stopped and removed (the supervisor removes its own;
    these outlived it, their podman killed with it), or an error naming those still there."""
    owner = label(workspace, name)
    remove(remaining(owner), grace=grace)
    left = remaining(owner)
    if left:
        names = " ".join(left)
        raise KilnError(
            f"deployment {name!r} is not deleted: its containers {names} are still there; "
            f"remove them (`podman rm --force {names}`) and run `kiln deploy delete {name}` again"
        )


def check_can_start(workspace: Workspace, spec: DeploymentSpec) -> None:
    """Refuse, before anything is recorded, a container deployment this machine cannot start:
    no engine, or an environment with no base image in a workspace with no default one."""
    from kiln import catalog, images
    from kiln.podman import require

    require("`--container`: a container deployment", "or deploy without --container")
    record = catalog.get(workspace, spec.env_name, spec.env_version)
    _options(record)
    images.image_record(workspace, record)


def kill(worker: subprocess.Popen[bytes], name: str) -> None:
    """A worker that will not stop: its container killed and removed, then podman itself
    (killing only podman would leave the container serving)."""
    remove([name], grace=0)
    worker.kill()
    worker.wait()
