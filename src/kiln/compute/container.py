"""The container target: the script runs inside the environment's image (``podman run``), as
Azure ML's jobs run in theirs. The core readies the image (present, pulled from the workspace
registry, or built: ``in_image``); this module runs it by digest, so what the run records is
exactly what ran.

Inside the container the run's folder is mounted at ``/kiln/run`` (the snapshot is its
``work/``, the working directory; metrics are appended to ``/kiln/run/metrics.jsonl``) and
Kiln's own package read-only at ``/kiln/python/kiln`` on ``PYTHONPATH``, as the local target
puts it on the script's path: ``Run.get_context()`` works and nothing of Kiln's enters the
image, so its digest stays the environment's. Variables (the run's, and the definition's with
``${VAR}`` references expanded from the submitter's environment) are passed by name only.

Addresses: ``container`` (this machine's podman) or ``container://[CONNECTION][?gpus=...]``:
``CONNECTION`` a podman remote connection (its engine pulls the image from the workspace
registry; the run folder must be at the same path there), ``gpus=all`` or ``gpus=0,1``
passes GPUs through CDI (``--device nvidia.com/gpu=...``; needs the NVIDIA CDI spec).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from kiln.compute import RUN_DIR_VARIABLE
from kiln.compute.base import Ended, Execution, Job, RunControl, RunRef
from kiln.compute.runfolder import RunOutput, kiln_package
from kiln.errors import InvalidRequest, KilnError

if TYPE_CHECKING:
    from kiln.builders.oci.containers import Container, Engine

scheme: str | None = "container"
address_form: str = "container[://CONNECTION][?gpus=all|0,1]"
bare_address: bool = True


def in_image(address: str) -> bool:
    return True


RUN_DIR = "/kiln/run"
KILN_PATH = "/kiln/python"
NAME_PREFIX = "kiln-run-"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_GPU = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# podman run's own failures (125: the engine; 126, 127: the command or a device could not be
# set up), told apart from a script's exit code by the engine's "Error: " line last.
ENGINE_FAILED = (125, 126, 127)


@dataclass(frozen=True)
class Options:
    connection: str | None = None
    gpus: tuple[str, ...] = ()

    def devices(self) -> list[str]:
        return [f"nvidia.com/gpu={gpu}" for gpu in self.gpus]


def options(address: str) -> Options:
    """The options an address names; InvalidRequest naming the fix."""
    if address == "container":
        return Options()
    parts = urlsplit(address)

    def bad(what: str) -> InvalidRequest:
        return InvalidRequest(f"`compute_target`: {address!r}: {what}; write {address_form}")

    if parts.scheme != "container" or parts.path or parts.fragment:
        raise bad("not a container target's address")
    if parts.netloc and not _NAME.fullmatch(parts.netloc):
        raise bad(f"{parts.netloc!r} is not a podman connection name")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"gpus"})
    if unknown:
        raise bad(f"unknown option {unknown[0]!r} (the options: gpus)")
    gpus = tuple(g for g in ",".join(query.get("gpus", [])).split(",") if g)
    if "gpus" in query and (not gpus or not all(_GPU.fullmatch(g) for g in gpus)):
        raise bad("gpus must be 'all' or GPU indexes or names separated by commas")
    return Options(parts.netloc or None, gpus)


def check_address(address: str) -> None:
    options(address)


def container_name(run_id: str) -> str:
    return NAME_PREFIX + run_id


def _engine(address: str) -> Engine:
    from kiln.builders.oci.containers import Engine

    return Engine(options(address).connection)


@dataclass(frozen=True)
class _Image:
    run: str  # what ``podman run`` is given: a reference by digest
    reference: str | None  # how the run record names it
    digest: str
    pull: str  # "never", or "missing" on a remote engine
    tls: tuple[str, ...] = ()  # podman's flag for a registry without TLS, when it pulls


def _image(job: Job) -> _Image:
    """The image to run: the pinned digest (a reproduce) or the one the core readied."""
    from kiln.builders.oci.imagefile import read_facts
    from kiln.builders.oci.publish import LOCAL_REPOSITORY
    from kiln.builders.oci.registry import parse

    facts = read_facts(job.ready.path)
    digest = job.image_digest or str(facts["digest"])
    same = digest == facts["digest"]
    reference = (facts.get("remote") or facts["reference"]) if same else None
    if options(job.address).connection is None:
        return _Image(f"{LOCAL_REPOSITORY}@{digest}", reference, digest, "never")
    if not job.workspace.image_registry:
        raise KilnError(
            f"a run on a podman remote connection ({job.address}) takes its image from the "
            "workspace's image registry, and there is none: `kiln init --image-registry URL`"
        )
    registry = parse(job.workspace.image_registry)
    return _Image(
        registry.by_digest(digest), reference, digest, "missing", tuple(registry.tls_args())
    )


def prepare(job: Job, output: RunOutput) -> None:
    """A pinned image (a reproduce) missing from this engine is pulled from the registry."""
    from kiln.builders.oci import containers
    from kiln.builders.oci.registry import parse

    if not job.ready.activation.argv:
        raise KilnError(f"{job.env_name}:{job.env_version} was readied outside an image")
    image = _image(job)
    where = _engine(job.address)
    if image.pull != "never":
        return
    try:
        if containers.image_exists(where, image.run):
            return
    except KilnError as exc:
        raise KilnError(
            f"podman does not work on this machine ({exc}); fix its configuration "
            "(`podman info` shows the problem)"
        ) from None
    registry = job.workspace.image_registry
    if not registry:
        raise KilnError(
            f"the image {image.digest} this run must run in is not on this machine, and the "
            "workspace has no image registry to pull it from; submit the run anew instead"
        )
    remote = parse(registry)
    output.line(f"pulling {remote.by_digest(image.digest)}")
    try:
        containers.pull(where, remote.by_digest(image.digest), remote.tls_args())
    except KilnError as exc:
        raise KilnError(
            f"the image {image.digest} this run must run in is neither on this machine nor in "
            f"the image registry {remote.url} ({exc}); submit the run anew instead"
        ) from None


def _variables(job: Job) -> dict[str, str]:
    """What the script sees besides the image's own: the run's variables and the definition's
    (``${VAR}`` expanded from this process's environment, which is the submitter's)."""
    expanded = job.ready.process_environment(dict(os.environ))
    inside = {name: expanded.get(name, "") for name in job.ready.variables}
    inside.update(job.variables)
    inside[RUN_DIR_VARIABLE] = RUN_DIR
    inside["PYTHONPATH"] = ":".join(p for p in (KILN_PATH, inside.get("PYTHONPATH")) if p)
    return inside


def _container(job: Job, image: _Image, variables: dict[str, str]) -> Container:
    from kiln.builders.oci.containers import Container, Mount

    return Container(
        name=container_name(job.run_id),
        image=image.run,
        command=[str(job.ready.interpreter), job.script, *job.arguments],
        owner=f"run {job.run_id}",
        variables=sorted(variables),
        mounts=[
            Mount(job.folder, RUN_DIR),
            Mount(kiln_package(), f"{KILN_PATH}/kiln", read_only=True),
        ],
        workdir=f"{RUN_DIR}/{job.work.relative_to(job.folder)}",
        devices=options(job.address).devices(),
        pull=image.pull,
        options=["--network=host", *image.tls],
    )


def start(job: Job, control: RunControl, output: RunOutput) -> Execution:
    image = _image(job)
    variables = _variables(job)
    spec = _container(job, image, variables)
    where = _engine(job.address)
    control.submitted(spec.name)  # first: cancel and settle can find the container by name
    process = subprocess.Popen(
        where.command(*spec.run_args()),
        env={**os.environ, **variables},  # the values of the names on the command line
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,  # always piped: the engine's own message is kept from its tail
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C reaches the watcher, which stops the container
    )
    try:
        control.ran_in(image.reference, image.digest)
        control.running()
    except BaseException:
        _remove_quietly(where, spec.name)
        raise
    return _Container(process, where, spec.name, control, output)


class _Container:
    def __init__(
        self,
        process: subprocess.Popen[bytes],
        where: Engine,
        name: str,
        control: RunControl,
        output: RunOutput,
    ) -> None:
        self.process, self.where, self.name = process, where, name
        self.control, self.output = control, output
        self.stopper: subprocess.Popen[bytes] | None = None
        self.tail: deque[bytes] = deque(maxlen=5)  # the engine's message if it cannot start

    def follow(self) -> Ended:
        assert self.process.stdout is not None
        while data := os.read(self.process.stdout.fileno(), 1 << 16):
            self.output.write(data)
            self.tail.extend(data.splitlines()[-5:])
        code = self.process.wait()
        if self.stopper is not None:
            self.stopper.wait()
        if code != 0:
            _remove_quietly(self.where, self.name)  # --rm did it, unless the client died first
        if self.stopper is not None or self.control.cancel_requested():
            return Ended(code, "canceled", canceled=True)
        return _ended(code, b"\n".join(self.tail).decode(errors="replace"))

    def stop(self, grace: float) -> None:
        from kiln.builders.oci.containers import stop_in_background

        self.output.line(f"canceling: podman stop (SIGTERM, then SIGKILL after {grace:g} s)")
        if self.stopper is None:
            self.stopper = stop_in_background(self.where, self.name, grace)


def _ended(code: int, tail: str) -> Ended:
    if code == 0:
        return Ended(0)
    last = tail.strip().splitlines()[-1] if tail.strip() else ""
    if code in ENGINE_FAILED and last.startswith("Error: "):
        return Ended(code, f"the container could not start: {last.removeprefix('Error: ')}")
    if 128 < code < 160:  # the engine reports a signal as 128 + its number
        return Ended(code, f"the script was killed by signal {code - 128}")
    return Ended(code, f"the script exited with code {code}")


def _remove_quietly(where: Engine, name: str) -> None:
    from kiln.builders.oci.containers import remove

    with contextlib.suppress(KilnError):  # the engine said why elsewhere
        remove(where, name)


def cancel(ref: RunRef, *, grace: float) -> None:
    from kiln.builders.oci.containers import stop

    if ref.job_id:
        stop(_engine(ref.address), ref.job_id, grace)


def abandoned(ref: RunRef) -> Ended:
    """The watcher died: nobody collects the container's output any more, so it is stopped
    and removed (a run never keeps a container running unwatched)."""
    from kiln.builders.oci.containers import stop

    if ref.job_id:
        where = _engine(ref.address)
        try:
            stop(where, ref.job_id, grace=2.0)
        finally:
            _remove_quietly(where, ref.job_id)
    if ref.cancel_requested:
        return Ended(None, "canceled", canceled=True)
    return Ended(
        None, f"{ref.watcher} stopped before the run ended; its container was stopped and removed"
    )
