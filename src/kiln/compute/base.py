"""The ``ComputeTarget`` Protocol: what a kind of compute target does for a run. Its docstrings
are the guide for whoever writes the next kind (``container`` is the example of a target that
runs in the environment's image: ``podman run`` of it, the snapshot as working directory,
env vars, logs streamed, outputs collected, cancel = SIGTERM then kill).

A kind is one module of plain functions (``local``, ``ray``, ``container``) registered in
``registry.TARGETS``. Runs' core drives it the same way whatever the kind:

1. ``check_address`` when a run or a named target names an address of the kind;
2. in the run's watcher: ``prepare`` (the environment is built, the snapshot extracted), then
   ``start``, then ``Execution.follow`` until the script ends (a Ctrl-C in between makes the
   core call ``Execution.stop`` and ``follow`` again);
3. from any other process: ``cancel`` of a running run, and ``abandoned`` when its watcher died.

The core records everything (statuses, times, metrics, outputs, the log into the artifact
store); a target only tells it what happened through ``RunControl`` and ``Ended``. Outputs: a
target leaves what the script wrote to ``./outputs`` in ``Job.outputs`` by the time ``follow``
returns; the core stores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.compute.runfolder import RunOutput
    from kiln.ready import Ready
    from kiln.workspace import Workspace


@dataclass(frozen=True)
class Job:
    """One run, as its watcher hands it to a target."""

    run_id: str
    address: str  # the target's address, as ``check_address`` accepted it
    script: str  # relative to ``work``
    arguments: tuple[str, ...]
    work: Path  # the run's snapshot, extracted: the script's working directory
    folder: Path  # the run's folder on this machine (metrics are appended there)
    variables: Mapping[str, str]  # the run's own variables for the script (KILN_RUN_ID, ...)
    ready: Ready  # the built environment, held for the run: interpreter, variables, lock digest
    workspace: Workspace
    env_name: str
    env_version: str
    image_digest: str | None = None  # the exact image to run in (a reproduce), else the build's
    # False: ``ready`` came from the warm path unchecked (an image is trusted to be present;
    # a target that finds otherwise raises NotStarted instead of a check of its own first).
    checked: bool = True

    @property
    def outputs(self) -> Path:
        """Where the script's ``./outputs`` must be when the run ends, for the core to store."""
        return self.work / "outputs"


@dataclass(frozen=True)
class RunRef:
    """A run as the core knows it outside its watcher (for ``cancel`` and ``abandoned``)."""

    run_id: str
    address: str
    job_id: str | None  # what ``RunControl.submitted`` recorded
    process_group: int | None  # what ``RunControl.running`` recorded
    cancel_requested: bool
    watcher: str  # who watched the run, for messages: "the Kiln process watching this run (pid 7)"


class NotStarted(KilnError):
    """Raised by ``prepare`` or ``Execution.follow``: the script did not start in the
    environment it was given, and readying that environment again may help. ``rebuild``: it is
    gone from this machine (the core removes it from the cache and builds it anew); else it came
    unchecked (``Job.checked`` False) and the core readies it by the full path, whose checks
    say what is wrong if anything still is. Either happens once per run."""

    def __init__(self, message: str, *, rebuild: bool = False) -> None:
        super().__init__(message)
        self.rebuild = rebuild


class Ended(NamedTuple):
    """How a run's script ended. ``error`` None means it completed."""

    exit_code: int | None
    error: str | None = None  # one line for the user: "the script exited with code 3"
    canceled: bool = False  # the run ends Canceled (the target decides: a job may finish first)
    log: str | None = None  # the whole log, when the target kept it (replaces the run's copy)


class RunControl(Protocol):
    """What a target tells the core while it starts a run (the core records it at once)."""

    def cancel_requested(self) -> bool:
        """Whether somebody asked to cancel the run (``kiln run cancel``, the SDK)."""
        ...

    def submitted(self, job_id: str) -> None:
        """The target knows the run as ``job_id`` (a Ray submission id, a container name). Call
        it *before* handing the run over, so that cancel and ``abandoned`` can still ask the
        target about it if the watcher dies during the hand-over."""
        ...

    def ran_in(self, reference: str | None, digest: str) -> None:
        """The script runs in the image ``digest`` (``reference`` names it): recorded, so that
        the run shows it and ``reproduce`` runs that exact image again."""
        ...

    def running(self, *, process_group: int | None = None) -> None:
        """The script has started: the run becomes Running. ``process_group``: the group of a
        process on this machine that ``cancel`` and ``abandoned`` may stop."""
        ...


class Execution(Protocol):
    """A started run, in its watcher."""

    def follow(self) -> Ended:
        """Copy the script's output into the run's log as it comes (in bounded chunks: memory
        stays constant however much it prints) and return when the script has ended. A Ctrl-C
        (``KeyboardInterrupt``) may interrupt it; the core then calls ``stop`` and ``follow``
        again. Any other exception ends the run Failed after the core has called ``stop(0)``."""
        ...

    def stop(self, grace: float) -> None:
        """Ask the script to end (SIGTERM or the target's equivalent) and force it after
        ``grace`` seconds; note it in the run's log. Returns without waiting for the end:
        ``follow`` reports it."""
        ...


class ComputeTarget(Protocol):
    """A kind of compute target: a module with these names, registered in ``registry.TARGETS``
    under its kind (the name ``kiln target list`` shows)."""

    scheme: str | None  # the URL scheme of its addresses ("ray"); None: the kind is its address
    address_form: str  # how its addresses are written, for messages: "ray://HOST:PORT"
    bare_address: bool  # the kind's name alone is one of its addresses ("local", "container")

    def in_image(self, address: str) -> bool:
        """Whether the script runs inside the environment's image at ``address``: then the core
        readies the image form of the environment (on the workspace's default base image when
        the definition names none)."""
        ...

    def check_address(self, address: str) -> None:
        """Raise ``InvalidRequest`` naming the address and the expected form unless ``address``
        (of this kind's scheme) can be used. Fast and offline: a cluster is not contacted."""
        ...

    def prepare(self, job: Job, output: RunOutput) -> None:
        """Everything that may fail before the script starts, said clearly (an unreachable
        cluster, a lock the target cannot install). Raise ``KilnError``: the run ends Failed."""
        ...

    def start(self, job: Job, control: RunControl, output: RunOutput) -> Execution:
        """Start the script with ``job.variables`` and the environment's own in ``job.work``,
        calling ``control.submitted`` (if the target has job ids) and ``control.running``."""
        ...

    def cancel(self, ref: RunRef, *, grace: float) -> None:
        """Stop a run from another process (its watcher then sees it end). A run the target
        does not have yet is left alone: its watcher checks ``cancel_requested`` first."""
        ...

    def abandoned(self, ref: RunRef) -> Ended | None:
        """The run's watcher died. Stop what the target cannot finish alone and say how the run
        ended; None while it still runs on the target (the core asks again later)."""
        ...
