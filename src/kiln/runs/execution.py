"""Carry a recorded run to its end: materialize its environment, run the script on its compute
target, collect logs, metrics and outputs, and record how it ended.

The process doing this is the run's *watcher*: ``kiln run submit`` in the foreground, or a
detached ``python -m kiln.runs.watch`` for the SDK and ``--detach``. Whatever happens to the
script, the run ends in exactly one final state; if the watcher itself dies, ``settle`` notices
(its token names a dead process) and ends the run for it. The target is reached only through
``kiln.compute.registry``: this module knows no kind of target.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kiln.cache import Cache
from kiln.compute import RUN_DIR_VARIABLE, RUN_ID_VARIABLE
from kiln.compute.base import Ended, Execution, Job, NotStarted
from kiln.compute.runfolder import LOG_FILE, RunOutput, local_side, run_folder
from kiln.errors import KilnError
from kiln.runs.ending import finish, outcome
from kiln.runs.store import CANCELED, FAILED, PREPARING, RUNNING, RunRecord, RunStore

if TYPE_CHECKING:
    from kiln.ready import Ready
    from kiln.workspace import Workspace

CANCEL_GRACE_SECONDS = 10.0
LOG_SHIP_SECONDS = 2.0  # how stale a running run's log may be on the server


class _RunReporter:
    """Build phases and messages into the run's log (the build's own log stays with the build)."""

    def __init__(self, output: RunOutput) -> None:
        self.output = output

    def phase(self, name: str) -> None:
        self.output.line(f"environment: {name}")

    def detail(self, text: str) -> None:
        pass  # uv's progress is for a terminal, not for this log

    def message(self, text: str) -> None:
        self.output.line(text)


def execute(
    workspace: Workspace,
    run_id: str,
    *,
    echo: IO[bytes] | None = None,
    ready: Ready | None = None,
    grace: float = CANCEL_GRACE_SECONDS,
) -> RunRecord:
    """Run ``run_id`` (recorded, not started) to its end in this process; returns its record."""
    store = RunStore(workspace)
    try:
        record = store.get(run_id)
        folder = run_folder(workspace, run_id)
        folder.mkdir(parents=True, exist_ok=True)
        output = RunOutput(folder / LOG_FILE, echo)
        try:
            with _log_shipped(workspace, run_id, folder / LOG_FILE):
                _execute(workspace, store, record, folder, output, ready, grace)
        finally:
            output.close()
        return store.get(run_id)
    finally:
        store.close()


@contextlib.contextmanager
def _log_shipped(workspace: Workspace, run_id: str, log: Path) -> Iterator[None]:
    """A server's run: what its log gained reaches the server every few seconds, so `kiln run
    logs` shows a running run from any machine (``finish`` sends the rest)."""
    if workspace.server_url is None:
        yield
        return
    from kiln.registry.server_runs import log_upload

    upload = log_upload(workspace.server_url, run_id, log)
    stop = threading.Event()

    def ship() -> None:
        while not stop.wait(LOG_SHIP_SECONDS):
            with contextlib.suppress(KilnError, OSError):  # the next round tries again
                upload.send(last=False)

    shipper = threading.Thread(target=ship, name=f"kiln-log-{run_id}", daemon=True)
    shipper.start()
    try:
        yield
    finally:
        stop.set()
        shipper.join(timeout=60)


@contextlib.contextmanager
def _cancel_polled(
    workspace: Workspace, control: _RecordedControl, execution: Execution, grace: float
) -> Iterator[None]:
    """A server's run may be canceled from another machine, whose signals cannot reach this
    one: the watcher asks the server every few seconds and stops the run itself."""
    if workspace.server_url is None:
        yield
        return
    done = threading.Event()

    def poll() -> None:
        while not done.wait(LOG_SHIP_SECONDS):
            with contextlib.suppress(KilnError, OSError):  # the next round asks again
                if control.cancel_requested():
                    execution.stop(grace)
                    return

    poller = threading.Thread(target=poll, name="kiln-cancel-poll", daemon=True)
    poller.start()
    try:
        yield
    finally:
        done.set()
        poller.join(timeout=grace + 5)


class Canceled(KilnError):
    """The run was canceled before its script started."""


def _execute(
    workspace: Workspace,
    store: RunStore,
    record: RunRecord,
    folder: Path,
    output: RunOutput,
    ready: Ready | None,
    grace: float,
) -> None:
    checked = ready is None  # a warm environment is trusted as found (compute.base.NotStarted)
    try:
        if ready is None:
            store.update(record.id, status=PREPARING)
            ready = _prepare(workspace, record, output)
        store.update(record.id, lock_digest=ready.lock_digest, platform=ready.platform)
        work = folder / "work"
        if work.exists():
            shutil.rmtree(work)
        local_side(workspace).artifacts.extract_tree(record.snapshot_digest, work)
        if store.get(record.id).cancel_requested:
            raise Canceled("canceled before the script started")
        for attempt in range(3):  # warm and trusted, then checked, then built again
            try:
                ended = _run_on_target(store, record, ready, output, grace, checked)
                break
            except NotStarted as exc:
                if attempt == 2 or (checked and not exc.rebuild):
                    raise
                output.line(f"{exc}: readying the environment again")
                ready.release()
                if exc.rebuild:  # gone from the engine: its cache entry goes too
                    Cache(workspace.cache_root).remove(ready.key)
                ready, checked = _prepare(workspace, record, output), True
        status, code, error = outcome(ended)
    except KilnError as exc:
        output.line(f"{'canceled' if isinstance(exc, Canceled) else 'failed'}: {exc}")
        status, code, error = FAILED, None, str(exc)
        if store.get(record.id).cancel_requested:
            status, error = CANCELED, "canceled"
    except BaseException as exc:  # Kiln itself is stopping (a second Ctrl-C, a bug)
        output.line(f"Kiln stopped ({type(exc).__name__})")
        canceled = store.get(record.id).cancel_requested
        status, error = (CANCELED, "canceled") if canceled else (FAILED, "Kiln stopped")
        finish(workspace, store, record, output, status, None, error)
        raise
    finally:
        if ready is not None:
            ready.release()  # the hold this run took, whoever made it
    finish(workspace, store, record, output, status, code, error)


def _prepare(workspace: Workspace, record: RunRecord, output: RunOutput) -> Ready:
    from kiln import catalog
    from kiln.compute.registry import target_of
    from kiln.ready import ready_and_held

    env = catalog.get(workspace, record.env_name, record.env_version)
    if target_of(record.compute_target).in_image(record.compute_target):
        from kiln.images import image_record

        env = image_record(workspace, env)  # on the workspace's default base if it names none
    output.line(f"environment {env.reference} (build {env.build_hash[:12]})")
    try:
        # A reproduced run names the lock of the run it repeats; others take the newest.
        return ready_and_held(
            workspace, record=env, reporter=_RunReporter(output), lock_digest=record.lock_digest
        )
    except KilnError as exc:
        _attach_build_log(workspace, env.build_hash, output)
        raise KilnError(f"the environment {env.reference} failed to build: {exc}") from None


def _attach_build_log(workspace: Workspace, build_hash: str, output: RunOutput) -> None:
    """The failed build's full log, into the run's log: a run that could not start says why."""
    from kiln.buildinfo import latest_build_log

    log = latest_build_log(workspace, build_hash=build_hash)
    if log is not None:
        output.line("---- environment build log ----")
        output.write(log.read_bytes())
        output.line("---- end of build log ----")


def _run_on_target(
    store: RunStore,
    record: RunRecord,
    ready: Ready,
    output: RunOutput,
    grace: float,
    checked: bool,
) -> Ended:
    from kiln.compute.registry import target_of

    target = target_of(record.compute_target)
    job = _job(store.workspace, record, ready, checked)
    target.prepare(job, output)
    control = _RecordedControl(store, record.id)
    execution = target.start(job, control, output)
    try:
        if control.cancel_requested():  # came while it started, when there was nothing to stop
            execution.stop(grace)
        with _cancel_polled(store.workspace, control, execution, grace):
            return _follow(execution, control, grace)
    except NotStarted:
        raise  # its script never started: nothing to stop
    except BaseException:
        with contextlib.suppress(KilnError):
            execution.stop(0.0)  # never leave it running unwatched
        raise


def _job(workspace: Workspace, record: RunRecord, ready: Ready, checked: bool) -> Job:
    folder = run_folder(workspace, record.id)
    return Job(
        run_id=record.id,
        address=record.compute_target,
        script=record.script,
        arguments=tuple(record.arguments),
        work=folder / "work",
        folder=folder,
        variables={
            RUN_ID_VARIABLE: record.id,
            RUN_DIR_VARIABLE: str(folder),
            "PYTHONUNBUFFERED": "1",  # logs arrive as they are written
        },
        ready=ready,
        workspace=workspace,
        env_name=record.env_name,
        env_version=record.env_version,
        image_digest=record.image_digest,
        checked=checked,
    )


def _follow(execution: Execution, control: _RecordedControl, grace: float) -> Ended:
    interrupted = False
    while True:
        try:
            return execution.follow()
        except KeyboardInterrupt:  # Ctrl-C on a watched run cancels it
            if interrupted:
                raise  # a second Ctrl-C: stop waiting (it is stopped at once)
            interrupted = True
            control.request_cancel()
            execution.stop(grace)


class _RecordedControl:
    """``RunControl`` over the run store: what the target says is recorded at once."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id

    def cancel_requested(self) -> bool:
        return self.store.get(self.run_id).cancel_requested

    def request_cancel(self) -> None:
        self.store.update(self.run_id, cancel_requested=True)

    def submitted(self, job_id: str) -> None:
        self.store.update(self.run_id, target_job_id=job_id)

    def ran_in(self, reference: str | None, digest: str) -> None:
        self.store.update(self.run_id, image_reference=reference, image_digest=digest)

    def running(self, *, process_group: int | None = None) -> None:
        values: dict[str, Any] = {"status": RUNNING, "started_at": time.time()}
        if process_group is not None:
            values["process_group"] = process_group
        self.store.update(self.run_id, **values)
