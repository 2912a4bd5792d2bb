"""Runs on a Ray cluster: the run's snapshot as the job's working directory, Kiln's package as a
py_module, the environment's exact lock as the packages (never resolved again), its variables
as env_vars. The watcher streams the job's log into the run and records how the job ended.

The workspace's run folder must be reachable from the workers at the same path (a shared
filesystem) for metrics and outputs to come back; logs and status always do, through Ray.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.errors import KilnError, NotFound
from kiln.runs.context import RUN_DIR_VARIABLE, RUN_ID_VARIABLE
from kiln.runs.launch import OUTPUTS_VARIABLE
from kiln.runs.store import CANCELED, COMPLETED, FAILED, RUNNING, RunRecord, RunStore

if TYPE_CHECKING:
    from kiln.ready import Ready
    from kiln.runs.execution import _Output
    from kiln.workspace import Workspace

_SUBMIT_TIMEOUT = 120.0  # uploading the snapshot is part of submitting
_POLL_SECONDS = 0.2
_OUTAGE_SECONDS = 600.0  # how long a cluster may stop answering before the run is failed


def lock_requirements(
    workspace: Workspace, env_name: str, env_version: str, lock_digest: str
) -> list[str]:
    """The environment's lock as hashed requirement lines, after its index options."""
    from kiln.environment import catalog
    from kiln.lockexport import to_requirements
    from kiln.registry.lock_queries import list_locks
    from kiln.secrets import expand

    record = catalog.get(workspace, env_name, env_version)
    pip = record.definition.python.pip
    if any(entry.startswith("wheel:") for entry in pip.packages) or pip.file_digests:
        raise KilnError(
            f"{record.reference} installs local files, which a Ray cluster cannot fetch; "
            "publish them to a package index the cluster reaches"
        )
    with workspace.engine.connect() as connection:
        lock = next(
            (
                row
                for row in list_locks(connection, build_hash=record.build_hash)
                if row.lock_digest == lock_digest
            ),
            None,
        )
    if lock is None:
        raise KilnError(
            f"the lock {lock_digest[:12]} of {record.reference} is not in the workspace"
        )
    options = []
    if pip.index_url:
        options.append(f"--index-url {expand(pip.index_url, os.environ, default='')}")
    options += [
        f"--extra-index-url {expand(url, os.environ, default='')}" for url in pip.extra_index_urls
    ]
    text = to_requirements(lock.lock_format, lock.lock_text, header=record.reference)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return options + lines


def _job_environment(ready: Ready, record: RunRecord, folder: Path) -> dict[str, str]:
    from kiln.secrets import expand

    variables = {k: expand(v, os.environ, default="") for k, v in ready.variables.items()}
    variables.update(
        {
            RUN_ID_VARIABLE: record.id,
            RUN_DIR_VARIABLE: str(folder),
            OUTPUTS_VARIABLE: str(folder / "work" / "outputs"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return variables


def run_on_ray(
    store: RunStore, record: RunRecord, ready: Ready, folder: Path, work: Path, output: _Output
) -> tuple[str, int | None, str | None]:
    from kiln.runs import ray_backend

    address = record.compute_target
    ray_backend.check_reachable(address)
    requirements = lock_requirements(
        store.workspace, record.env_name, record.env_version, ready.lock_digest
    )
    entrypoint = shlex.join(["python", "-m", "kiln.runs.launch", record.script, *record.arguments])
    output.line(
        f"submitting to {ray_backend.dashboard_url(address)} ({len(requirements)} lock lines)"
    )
    # Recorded before submitting (the submission id is the run id): a watcher that dies during
    # the upload leaves a run that settle and cancel can still ask Ray about.
    store.update(record.id, target_job_id=record.id)
    ray_backend.submit_job(
        address,
        submission_id=record.id,
        entrypoint=entrypoint,
        working_dir=work,
        py_modules=[Path(__file__).resolve().parents[1]],
        env_vars=_job_environment(ready, record, folder),
        requirements=requirements,
        timeout=_SUBMIT_TIMEOUT,
    )
    store.update(record.id, status=RUNNING, started_at=time.time())
    if store.get(record.id).cancel_requested:  # canceled while it was being submitted
        ray_backend.stop_job(address, record.id)
    follower = _LogFollower(address, record.id, output)
    follower.start()
    stopping = False
    while True:
        try:
            while _status(address, record.id, output) in ("PENDING", "RUNNING"):
                time.sleep(_POLL_SECONDS)
            break
        except KeyboardInterrupt:  # Ctrl-C on a watched run cancels it
            if stopping:
                raise
            stopping = True
            store.update(record.id, cancel_requested=True)
            output.line("canceling: stopping the Ray job")
            ray_backend.stop_job(address, record.id)
    follower.finish()
    return _ended(address, record.id, store.get(record.id).cancel_requested)


def _status(address: str, job_id: str, output: _Output) -> str:
    """The job's status, riding out a cluster that stops answering for a while: a long
    training run is not failed, and its job not orphaned, by a dashboard restart."""
    from kiln.runs import ray_backend

    deadline = time.monotonic() + _OUTAGE_SECONDS
    while True:
        try:
            return ray_backend.job_status(address, job_id)
        except ray_backend.RayTargetError as exc:
            if time.monotonic() > deadline:
                raise
            output.line(f"the Ray cluster does not answer ({exc}); retrying")
            time.sleep(5.0)


class _LogFollower:
    """Streams the job's log into the run as it comes. Ray closes its log stream seconds after
    the job ends, so the end is taken from the job's status instead, and whatever the stream
    had not delivered by then is read once from the full log."""

    def __init__(self, address: str, job_id: str, output: _Output) -> None:
        import threading

        self.address, self.job_id, self.output = address, job_id, output
        self.lock = threading.Lock()
        self.received = 0  # characters written so far
        self.done = False
        self.thread = threading.Thread(target=self._follow, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _follow(self) -> None:
        from kiln.runs import ray_backend

        try:
            for chunk in ray_backend.follow_logs(self.address, self.job_id):
                with self.lock:
                    if self.done:
                        return
                    self.output.write(chunk.encode())
                    self.received += len(chunk)
        except KilnError:
            pass  # the final read below fills in whatever the stream missed

    def finish(self) -> None:
        from kiln.runs import ray_backend

        self.thread.join(timeout=0.05)  # a chunk already on its way; the read below has the rest
        whole = ray_backend.job_logs(self.address, self.job_id)
        with self.lock:
            self.done = True
            if len(whole) > self.received:
                self.output.write(whole[self.received :].encode())


def _ended(address: str, job_id: str, cancel_requested: bool) -> tuple[str, int | None, str | None]:
    from kiln.runs import ray_backend

    deadline = time.monotonic() + 60
    details = ray_backend.job_details(address, job_id)
    while details["status"] in ("PENDING", "RUNNING") and time.monotonic() < deadline:
        time.sleep(0.2)  # the log stream ends a moment before the status does
        details = ray_backend.job_details(address, job_id)
    status, code = details["status"], details["exit_code"]
    if status == "SUCCEEDED":
        return COMPLETED, 0, None
    if cancel_requested:
        return CANCELED, code, "canceled"
    if status == "STOPPED":
        return FAILED, code, "the Ray job was stopped outside Kiln"
    reason = details.get("message") or details.get("error_type") or "the Ray job failed"
    if code not in (None, 0):
        reason = f"the script exited with code {code}"
    return FAILED, code, reason


def settle_ray(workspace: Workspace, record: RunRecord) -> RunRecord:
    """A Ray run whose watcher died: once the job has ended, record its end and its log."""
    from kiln.runs import ray_backend
    from kiln.runs.execution import LOG_FILE, _Output, finish, run_folder

    error: str | None
    if not record.target_job_id:
        status, code, error = FAILED, None, "the Kiln process submitting this run stopped"
        logs = ""
    else:
        try:
            if ray_backend.job_status(record.compute_target, record.target_job_id) in (
                "PENDING",
                "RUNNING",
            ):
                return record  # still going: settled by whoever looks after it ends
            status, code, error = _ended(
                record.compute_target, record.target_job_id, record.cancel_requested
            )
            logs = ray_backend.job_logs(record.compute_target, record.target_job_id)
        except NotFound:  # the watcher stopped before the job reached the cluster
            status, code, error = FAILED, None, "the run never reached the Ray cluster"
            logs = ""
        except KilnError:
            return record  # the cluster cannot tell now; ask again later
    folder = run_folder(workspace, record.id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOG_FILE).write_text(logs, encoding="utf-8")  # Ray kept the whole log
    store = RunStore(workspace)
    output = _Output(folder / LOG_FILE, None)
    try:
        finish(workspace, store, record, folder, output, status, code, error)
        return store.get(record.id)
    finally:
        output.close()
        store.close()
