"""The container target: the script runs inside the environment's image (``podman run``), as
Azure ML's jobs run in theirs. The core readies the image (present, pulled from the workspace
registry, or built: ``in_image``); this module runs it by digest, so what the run records is
exactly what ran.

Inside the container the run's folder is mounted at ``/kiln/run`` (the snapshot is its
``work/``, the working directory; metrics are appended to ``/kiln/run/metrics.jsonl``) and
Kiln's own package read-only at ``/kiln/python/kiln`` on ``PYTHONPATH``, as the local target
puts it on the script's path: ``Run.get_context()`` works and nothing of Kiln's enters the
image, so its digest stays the environment's. Variables (the run's, and the definition's with
``${VAR}`` references expanded from the submitter's environment) are passed by name only. The
definition's docker run settings (``shm_size``, ``arguments``) apply as kiln.dockerrun says.

A warm run (``Job.checked`` False) trusts the image its build recorded: no ``podman image
exists`` first (about 0.1 s). If podman then fails without having made the container (its
``--cidfile`` is not written: the image is gone, the engine is misconfigured), the script
never ran, and ``NotStarted`` makes the core ready the image by the full path, whose checks
say what is wrong, and start again.

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
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kiln import dockerrun, podman
from kiln.compute import RUN_DIR_VARIABLE
from kiln.compute.base import Ended, Execution, Job, NotStarted, RunControl, RunRef
from kiln.compute.runfolder import RunOutput, kiln_package
from kiln.errors import InvalidRequest, KilnError
from kiln.podman import KILN_PATH, Container, Engine, Mount

scheme: str | None = "container"
address_form: str = "container[://CONNECTION][?gpus=all|0,1]"
bare_address: bool = True


def in_image(address: str) -> bool:
    return True


RUN_DIR = "/kiln/run"
NAME_PREFIX = "kiln-run-"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_GPU = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


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
    facts = podman.read_image_facts(job.ready.path)
    digest = job.image_digest or str(facts["digest"])
    same = digest == facts["digest"]
    reference = (facts.get("remote") or facts["reference"]) if same else None
    if options(job.address).connection is None:
        return _Image(podman.by_digest(str(facts["reference"]), digest), reference, digest, "never")
    from kiln.builders.oci.registry import parse

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
    """The image is on this engine: a pinned one (a reproduce) missing is pulled from the
    registry, the build's own is pulled or, without a registry, built again (NotStarted).
    A warm run's image is trusted as recorded (see the module's docstring)."""
    if not job.ready.activation.argv:
        raise KilnError(f"{job.env_name}:{job.env_version} was readied outside an image")
    image = _image(job)
    where = _engine(job.address)
    _settings(job)  # a refused docker.arguments item fails the run before anything starts
    if image.pull != "never" or not job.checked:
        return
    try:
        if podman.image_exists(where, image.run):
            return
    except KilnError as exc:
        raise KilnError(
            f"podman does not work on this machine ({exc}); fix its configuration "
            "(`podman info` shows the problem)"
        ) from None
    registry = job.workspace.image_registry
    if not registry and image.reference is not None:  # the build's own image, gone
        raise NotStarted(f"the image {image.digest} is no longer on this machine", rebuild=True)
    if not registry:
        raise KilnError(
            f"the image {image.digest} this run must run in is not on this machine, and the "
            "workspace has no image registry to pull it from; submit the run anew instead"
        )
    from kiln.builders.oci.registry import parse

    remote = parse(registry)
    output.line(f"pulling {remote.by_digest(image.digest)}")
    try:
        podman.pull(where, remote.by_digest(image.digest), remote.tls_args())
    except KilnError as exc:
        raise KilnError(
            f"the image {image.digest} this run must run in is neither on this machine nor in "
            f"the image registry {remote.url} ({exc}); submit the run anew instead"
        ) from None


def _variables(job: Job) -> dict[str, str]:
    """What the script sees besides the image's own: the run's variables and the definition's
    (``${VAR}`` expanded from this process's environment, which is the submitter's)."""
    inside = podman.variables_inside([job.ready.variables, job.variables], os.environ)
    inside[RUN_DIR_VARIABLE] = RUN_DIR
    return inside


def _settings(job: Job) -> list[str]:
    """``podman run`` options from the definition's docker run settings (kiln.dockerrun)."""
    return dockerrun.podman_options(job.ready.docker_run)


def _container(job: Job, image: _Image, variables: dict[str, str]) -> Container:
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
        cidfile=None if job.checked or image.pull != "never" else _fresh(job.folder / "cid"),
        pull=image.pull,
        options=[*dockerrun.with_network(_settings(job)), *image.tls],
    )


def _fresh(path: Path) -> Path:
    """``path``, which this machine's podman writes once it has made the container (it must
    not exist before). Only for a warm run on this machine: a remote engine pulls anyway."""
    path.unlink(missing_ok=True)
    return path


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
    return _Container(process, where, spec.name, control, output, spec.cidfile)


class _Container:
    def __init__(
        self,
        process: subprocess.Popen[bytes],
        where: Engine,
        name: str,
        control: RunControl,
        output: RunOutput,
        cidfile: Path | None,
    ) -> None:
        self.process, self.where, self.name = process, where, name
        self.control, self.output, self.cidfile = control, output, cidfile
        self.stopper: subprocess.Popen[bytes] | None = None
        self.tail: deque[bytes] = deque(maxlen=5)  # the engine's message if it cannot start

    def follow(self) -> Ended:
        assert self.process.stdout is not None
        while data := os.read(self.process.stdout.fileno(), 1 << 16):
            self.output.write(data)
            self.tail.extend(data.splitlines()[-5:])
        code = self.process.wait()
        made = self.cidfile is None or self.cidfile.exists()  # by podman, if it made one
        if self.cidfile is not None:
            self.cidfile.unlink(missing_ok=True)
        if self.stopper is not None:
            self.stopper.wait()
        if code != 0:
            _remove_quietly(self.where, self.name)  # --rm did it, unless the client died first
        if self.stopper is not None or self.control.cancel_requested():
            return Ended(code, "canceled", canceled=True)
        tail = b"\n".join(self.tail).decode(errors="replace")
        if code != 0 and not made:
            # podman made no container, so the script never ran: see the module's docstring.
            said = podman.last_message(tail).removeprefix("Error: ") or f"exit code {code}"
            raise NotStarted(f"podman could not start the container as recorded ({said})")
        engine = podman.engine_failure(code, tail)
        if engine is not None:
            return Ended(code, f"the container could not start: {engine}")
        return _ended(code)

    def stop(self, grace: float) -> None:
        self.output.line(f"canceling: podman stop (SIGTERM, then SIGKILL after {grace:g} s)")
        if self.stopper is None:
            self.stopper = podman.stop_in_background(self.where, self.name, grace)


def _ended(code: int) -> Ended:
    if code == 0:
        return Ended(0)
    if 128 < code < 160:  # the engine reports a signal as 128 + its number
        return Ended(code, f"the script was killed by signal {code - 128}")
    return Ended(code, f"the script exited with code {code}")


def _remove_quietly(where: Engine, name: str) -> None:
    with contextlib.suppress(KilnError):  # the engine said why elsewhere
        podman.remove(where, [name])


def cancel(ref: RunRef, *, grace: float) -> None:
    if ref.job_id:
        podman.stop(_engine(ref.address), ref.job_id, grace)


def abandoned(ref: RunRef) -> Ended:
    """The watcher died: nobody collects the container's output any more, so it is stopped
    and removed (a run never keeps a container running unwatched)."""
    if ref.job_id:
        where = _engine(ref.address)
        try:
            podman.stop(where, ref.job_id, grace=2.0)
        finally:
            _remove_quietly(where, ref.job_id)
    if ref.cancel_requested:
        return Ended(None, "canceled", canceled=True)
    return Ended(
        None, f"{ref.watcher} stopped before the run ended; its container was stopped and removed"
    )
