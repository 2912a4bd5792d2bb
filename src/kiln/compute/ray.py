"""The Ray target: runs as jobs on an existing Ray cluster, through its job submission API
(``ray_jobs``). The run's snapshot is the job's working directory, Kiln's package a py_module,
the environment's exact lock the packages (never resolved again), its variables env_vars. The
watcher streams the job's log into the run and records how the job ended.

The workspace's run folder must be reachable from the workers at the same path (a shared
filesystem) for metrics and outputs to come back; logs and status always do, through Ray.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from typing import TYPE_CHECKING

from kiln.compute.base import Ended, Execution, Job, RunControl, RunRef
from kiln.compute.ray_launch import OUTPUTS_VARIABLE
from kiln.compute.runfolder import RunOutput, kiln_package
from kiln.errors import KilnError, NotFound

if TYPE_CHECKING:
    from kiln.workspace import Workspace

scheme: str | None = "ray"
address_form: str = "ray://HOST:PORT[?image=true]"
bare_address: bool = False


def in_image(address: str) -> bool:
    from kiln.compute.ray_jobs import runs_in_image

    return runs_in_image(address)


_SUBMIT_TIMEOUT = 120.0  # uploading the snapshot is part of submitting
_POLL_SECONDS = 0.2
_OUTAGE_SECONDS = 600.0  # how long a cluster may stop answering before the run is failed
_GOING = ("PENDING", "RUNNING")


def check_address(address: str) -> None:
    from kiln.compute.ray_jobs import RayAddressError, check_credentials_transport, dashboard_url
    from kiln.secrets import plain_password_message, url_has_literal_credentials

    dashboard_url(address)
    # Only a ${VAR} reference is stored (and read from the environment where it is used).
    if url_has_literal_credentials(address):
        raise RayAddressError(f"compute target {plain_password_message(address, 'RAY_PASSWORD')}")
    check_credentials_transport(address)


def prepare(job: Job, output: RunOutput) -> None:
    from kiln.compute.ray_jobs import check_reachable

    if in_image(job.address) and not job.workspace.image_registry:
        raise KilnError(
            f"a Ray run in the environment's image ({job.address}) has the cluster's nodes pull "
            "it from the workspace's image registry, and there is none: "
            "`kiln init --image-registry URL`"
        )
    check_reachable(job.address)


def lock_requirements(
    workspace: Workspace, env_name: str, env_version: str, lock_digest: str
) -> list[str]:
    """The environment's lock as hashed requirement lines, after its index options."""
    from kiln import catalog
    from kiln.buildstore import open_build_store
    from kiln.lockexport import to_requirements
    from kiln.secrets import expand

    record = catalog.get(workspace, env_name, env_version)
    pip = record.definition.python.pip
    if any(entry.startswith("wheel:") for entry in pip.packages) or pip.file_digests:
        raise KilnError(
            f"{record.reference} installs local files, which a Ray cluster cannot fetch; "
            "publish them to a package index the cluster reaches"
        )
    from kiln.environment.packages import parse_conda_entry

    conda = [
        c
        for c in record.definition.python.conda.packages
        if parse_conda_entry(c).name not in ("python", "pip")
    ]
    if conda:
        raise KilnError(
            f"{record.reference} has conda packages ({', '.join(conda)}), which Kiln cannot "
            "install on a Ray cluster yet (Ray installs pip requirements); run it on the local "
            "target, or move them to python.pip if they are on PyPI"
        )
    stored = open_build_store(workspace).list_locks(build_hash=record.build_hash)
    lock = next((row for row in stored if row.lock_digest == lock_digest), None)
    if lock is None:
        raise KilnError(
            f"the lock {lock_digest[:12]} of {record.reference} is not in the workspace"
        )
    from kiln.buildlocks import verify_lock

    verify_lock(lock, record.definition, reference=record.reference)  # before a cluster installs it
    options = []
    if pip.index_url:
        options.append(f"--index-url {expand(pip.index_url, os.environ, default='')}")
    options += [
        f"--extra-index-url {expand(url, os.environ, default='')}" for url in pip.extra_index_urls
    ]
    text = to_requirements(lock.lock_format, lock.lock_text, header=record.reference)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return options + lines


def _job_environment(job: Job) -> dict[str, str]:
    from kiln.secrets import expand

    variables = {k: expand(v, os.environ, default="") for k, v in job.ready.variables.items()}
    variables.update(job.variables)
    variables[OUTPUTS_VARIABLE] = str(job.outputs)
    return variables


def start(job: Job, control: RunControl, output: RunOutput) -> Execution:
    from kiln.compute import ray_jobs

    if in_image(job.address):
        return _start_in_image(job, control, output)
    requirements = lock_requirements(
        job.workspace, job.env_name, job.env_version, job.ready.lock_digest
    )
    launch = ["python", "-m", "kiln.compute.ray_launch", job.script, *job.arguments]
    output.line(
        f"submitting to {ray_jobs.dashboard_url(job.address)} ({len(requirements)} lock lines)"
    )
    # Recorded before submitting (the submission id is the run id): a watcher that dies during
    # the upload leaves a run that settle and cancel can still ask Ray about.
    control.submitted(job.run_id)
    ray_jobs.submit_job(
        job.address,
        submission_id=job.run_id,
        entrypoint=shlex.join(launch),
        working_dir=job.work,
        py_modules=[kiln_package()],
        env_vars=_job_environment(job),
        requirements=requirements,
        timeout=_SUBMIT_TIMEOUT,
    )
    control.running()
    follower = _LogFollower(job.address, job.run_id, output)
    follower.start()
    return _RayJob(job.address, job.run_id, control, output, follower)


def _start_in_image(job: Job, control: RunControl, output: RunOutput) -> Execution:
    """The run's own image (kiln.compute.runimage) as the job's ``image_uri``: Ray takes only
    env_vars beside it, so the snapshot and Kiln's package travel inside the image."""
    from kiln.compute import ray_jobs, runimage

    environment = runimage.environment_digest(job)
    output.line(f"building the run's image on the environment's image {environment[:19]}")
    image = runimage.build_and_push(job)
    launch = ["python", "-m", "kiln.compute.ray_launch", job.script, *job.arguments]
    entrypoint = f"cd {runimage.RUN_WORK} && {shlex.join(launch)}"
    output.line(f"submitting to {ray_jobs.dashboard_url(job.address)} (in image {image})")
    control.submitted(job.run_id)
    ray_jobs.submit_image_job(
        job.address,
        submission_id=job.run_id,
        entrypoint=entrypoint,
        image_uri=image,
        env_vars=_job_environment(job),
        timeout=_SUBMIT_TIMEOUT,
    )
    control.ran_in(None, environment)  # the environment's image: what reproduce runs again
    control.running()
    follower = _LogFollower(job.address, job.run_id, output)
    follower.start()
    return _RayJob(job.address, job.run_id, control, output, follower)


class _RayJob:
    def __init__(
        self,
        address: str,
        job_id: str,
        control: RunControl,
        output: RunOutput,
        follower: _LogFollower,
    ) -> None:
        self.address, self.job_id, self.control = address, job_id, control
        self.output, self.follower = output, follower

    def follow(self) -> Ended:
        while _status(self.address, self.job_id, self.output) in _GOING:
            time.sleep(_POLL_SECONDS)
        self.follower.finish()
        return _ended(self.address, self.job_id, self.control.cancel_requested())

    def stop(self, grace: float) -> None:
        """Ray applies its own grace period (``RAY_JOB_STOP_WAIT_TIME_S``)."""
        from kiln.compute.ray_jobs import stop_job

        self.output.line("canceling: stopping the Ray job")
        stop_job(self.address, self.job_id)


def _status(address: str, job_id: str, output: RunOutput) -> str:
    """The job's status, riding out a cluster that stops answering for a while: a long
    training run is not failed, and its job not orphaned, by a dashboard restart."""
    from kiln.compute import ray_jobs

    deadline = time.monotonic() + _OUTAGE_SECONDS
    while True:
        try:
            return ray_jobs.job_status(address, job_id)
        except ray_jobs.RayTargetError as exc:
            if time.monotonic() > deadline:
                raise
            output.line(f"the Ray cluster does not answer ({exc}); retrying")
            time.sleep(5.0)


class _LogFollower:
    """Streams the job's log into the run as it comes. Ray closes its log stream seconds after
    the job ends, so the end is taken from the job's status instead, and whatever the stream
    had not delivered by then is read once from the full log."""

    def __init__(self, address: str, job_id: str, output: RunOutput) -> None:
        import threading

        self.address, self.job_id, self.output = address, job_id, output
        self.lock = threading.Lock()
        self.received = 0  # characters written so far
        self.done = False
        self.thread = threading.Thread(target=self._follow, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _follow(self) -> None:
        from kiln.compute import ray_jobs

        try:
            for chunk in ray_jobs.follow_logs(self.address, self.job_id):
                with self.lock:
                    if self.done:
                        return
                    self.output.write(chunk.encode())
                    self.received += len(chunk)
        except KilnError:
            pass  # the final read below fills in whatever the stream missed

    def finish(self) -> None:
        from kiln.compute import ray_jobs

        self.thread.join(timeout=0.05)  # a chunk already on its way; the read below has the rest
        whole = ray_jobs.job_logs(self.address, self.job_id)
        with self.lock:
            self.done = True
            if len(whole) > self.received:
                self.output.write(whole[self.received :].encode())


def _ended(address: str, job_id: str, cancel_requested: bool) -> Ended:
    from kiln.compute import ray_jobs

    deadline = time.monotonic() + 60
    details = ray_jobs.job_details(address, job_id)
    while details["status"] in _GOING and time.monotonic() < deadline:
        time.sleep(0.2)  # the log stream ends a moment before the status does
        details = ray_jobs.job_details(address, job_id)
    status, code = details["status"], details["exit_code"]
    if status == "SUCCEEDED":
        return Ended(0)
    if cancel_requested:
        return Ended(code, "canceled", canceled=True)
    if status == "STOPPED":
        return Ended(code, "the Ray job was stopped outside Kiln")
    reason = details.get("message") or details.get("error_type") or "the Ray job failed"
    if code not in (None, 0):
        reason = f"the script exited with code {code}"
    return Ended(code, reason)


def cancel(ref: RunRef, *, grace: float) -> None:
    from kiln.compute.ray_jobs import stop_job

    if ref.job_id:
        with contextlib.suppress(NotFound):  # not submitted yet: the watcher checks the flag
            stop_job(ref.address, ref.job_id)


def abandoned(ref: RunRef) -> Ended | None:
    """Once the job has ended, how it ended and its whole log (Ray kept it)."""
    from kiln.compute import ray_jobs

    if not ref.job_id:
        return Ended(None, "the Kiln process submitting this run stopped")
    try:
        if ray_jobs.job_status(ref.address, ref.job_id) in _GOING:
            return None  # still going: settled by whoever looks after it ends
        ended = _ended(ref.address, ref.job_id, ref.cancel_requested)
        return ended._replace(log=ray_jobs.job_logs(ref.address, ref.job_id))
    except NotFound:  # the watcher stopped before the job reached the cluster
        return Ended(None, "the run never reached the Ray cluster")
    except KilnError:
        return None  # the cluster cannot tell now; ask again later
