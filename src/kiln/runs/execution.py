"""Carry a recorded run to its end: materialize its environment, run the script on its target,
collect logs, metrics and outputs, and record how it ended.

The process doing this is the run's *watcher*: ``kiln run submit`` in the foreground, or a
detached ``python -m kiln.runs.watch`` for the SDK and ``--detach``. Whatever happens to the
script, the run ends in exactly one final state; if the watcher itself dies, ``settle`` notices
(its token names a dead process) and ends the run for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kiln.errors import KilnError
from kiln.runs import processes
from kiln.runs.context import METRICS_FILE, RUN_DIR_VARIABLE, RUN_ID_VARIABLE, read_metrics
from kiln.runs.store import (
    CANCELED,
    COMPLETED,
    FAILED,
    FINALIZING,
    PREPARING,
    RUNNING,
    RunRecord,
    RunStore,
)

if TYPE_CHECKING:
    from kiln.ready import Ready
    from kiln.workspace import Workspace

LOG_FILE = "output.log"
CANCEL_GRACE_SECONDS = 10.0
LOCAL_TARGET = "local"


def run_folder(workspace: Workspace, run_id: str) -> Path:
    return workspace.root / "runs" / run_id


def with_kiln_importable(env: dict[str, str], folder: Path) -> dict[str, str]:
    """``env`` with Kiln's package importable (runs' context, the scoring runtime) through
    ``PYTHONPATH``: nothing is installed into the environment."""
    overlay = str(kiln_python_path(folder))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (overlay, env.get("PYTHONPATH", "")) if p)
    return env


def kiln_python_path(folder: Path) -> Path:
    """A folder holding only a link to Kiln's own package, for the script's PYTHONPATH: the
    script can ``from kiln import Run`` and nothing else of Kiln's environment leaks in."""
    overlay = folder / "python"
    link = overlay / "kiln"
    if not link.exists():
        overlay.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            link.symlink_to(Path(__file__).resolve().parents[1], target_is_directory=True)
    return overlay


class _Output:
    """The run's log file, and the console when the user watches."""

    def __init__(self, path: Path, echo: IO[bytes] | None) -> None:
        self.file = path.open("ab")
        self.echo = echo

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.file.flush()
        if self.echo is not None:
            self.echo.write(data)
            self.echo.flush()

    def line(self, text: str) -> None:
        self.write(f"[kiln] {text}\n".encode())

    def close(self) -> None:
        self.file.close()


class _RunReporter:
    """Build phases and messages into the run's log (the build's own log stays with the build)."""

    def __init__(self, output: _Output) -> None:
        self.output = output

    def phase(self, name: str) -> None:
        self.output.line(f"environment: {name}")

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
        output = _Output(folder / LOG_FILE, echo)
        try:
            _execute(workspace, store, record, folder, output, ready, grace)
        finally:
            output.close()
        return store.get(run_id)
    finally:
        store.close()


class Canceled(KilnError):
    """The run was canceled before its script started."""


def _execute(
    workspace: Workspace,
    store: RunStore,
    record: RunRecord,
    folder: Path,
    output: _Output,
    ready: Ready | None,
    grace: float,
) -> None:
    try:
        if ready is None:
            store.update(record.id, status=PREPARING)
            ready = _prepare(workspace, record, output)
        store.update(record.id, lock_digest=ready.lock_digest, platform=ready.platform)
        work = folder / "work"
        if work.exists():
            shutil.rmtree(work)
        workspace.artifacts.extract_tree(record.snapshot_digest, work)
        if store.get(record.id).cancel_requested:
            raise Canceled("canceled before the script started")
        if record.compute_target == LOCAL_TARGET:
            status, code, error = _run_local(store, record, ready, folder, work, output, grace)
        else:
            from kiln.runs.ray_target import run_on_ray

            status, code, error = run_on_ray(store, record, ready, folder, work, output)
    except KilnError as exc:
        output.line(f"{'canceled' if isinstance(exc, Canceled) else 'failed'}: {exc}")
        status, code, error = FAILED, None, str(exc)
        if store.get(record.id).cancel_requested:
            status, error = CANCELED, "canceled"
    except BaseException as exc:  # Kiln itself is stopping (a second Ctrl-C, a bug)
        output.line(f"Kiln stopped ({type(exc).__name__})")
        canceled = store.get(record.id).cancel_requested
        status, error = (CANCELED, "canceled") if canceled else (FAILED, "Kiln stopped")
        finish(workspace, store, record, folder, output, status, None, error)
        raise
    finally:
        if ready is not None:
            ready.release()  # the hold this run took, whoever made it
    finish(workspace, store, record, folder, output, status, code, error)


def _prepare(workspace: Workspace, record: RunRecord, output: _Output) -> Ready:
    from kiln.environment import catalog
    from kiln.ready import ready_and_held

    env = catalog.get(workspace, record.env_name, record.env_version)
    output.line(f"environment {env.reference} (build {env.build_hash[:12]})")
    try:
        # A reproduced run names the lock of the run it repeats; others take the newest.
        return ready_and_held(
            workspace, record=env, reporter=_RunReporter(output), lock_digest=record.lock_digest
        )
    except KilnError as exc:
        _attach_build_log(workspace, env.build_hash, output)
        raise KilnError(f"the environment {env.reference} failed to build: {exc}") from None


def _attach_build_log(workspace: Workspace, build_hash: str, output: _Output) -> None:
    """The failed build's full log, into the run's log: a run that could not start says why."""
    from kiln.registry.lock_queries import latest_build

    with workspace.engine.connect() as connection:
        build = latest_build(connection, build_hash=build_hash)
    digest = build.get("log_digest") if build else None
    log = workspace.artifacts.lookup(digest) if digest else None
    if log is not None:
        output.line("---- environment build log ----")
        output.write(log.read_bytes())
        output.line("---- end of build log ----")


def script_environment(
    ready: Ready, record: RunRecord, folder: Path, base: dict[str, str]
) -> dict[str, str]:
    env = ready.process_environment(base)
    env[RUN_ID_VARIABLE] = record.id
    env[RUN_DIR_VARIABLE] = str(folder)
    env["PYTHONUNBUFFERED"] = "1"  # logs arrive as they are written
    return with_kiln_importable(env, folder)


def _run_local(
    store: RunStore,
    record: RunRecord,
    ready: Ready,
    folder: Path,
    work: Path,
    output: _Output,
    grace: float,
) -> tuple[str, int | None, str | None]:
    env = script_environment(ready, record, folder, dict(os.environ))
    argv = [str(ready.interpreter), record.script, *record.arguments]
    piped = output.echo is not None
    process = subprocess.Popen(
        argv,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if piped else output.file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: cancel stops everything it started
    )
    try:
        store.update(record.id, status=RUNNING, started_at=time.time(), process_group=process.pid)
        # A cancel that came while we started it found no process group yet: act on it now.
        if store.get(record.id).cancel_requested:
            processes.stop_group(process.pid, record.id, grace)
        interrupted = False
        while True:
            try:
                if piped:
                    assert process.stdout is not None
                    _pump(process.stdout.fileno(), output)
                code = process.wait()
                break
            except KeyboardInterrupt:  # Ctrl-C on a watched run cancels it
                if interrupted:
                    raise  # a second Ctrl-C: stop waiting (the group is killed below)
                interrupted = True
                store.update(record.id, cancel_requested=True)
                output.line(f"canceling: SIGTERM, then SIGKILL after {grace:g} s")
                processes.stop_group(process.pid, record.id, grace)
    except BaseException:
        processes.stop_group(process.pid, record.id, 0.0)  # never leave it running unrecorded
        raise
    if interrupted or store.get(record.id).cancel_requested:
        return CANCELED, code, "canceled"
    if code == 0:
        return COMPLETED, 0, None
    if code < 0:
        return FAILED, code, f"the script was killed by signal {-code}"
    return FAILED, code, f"the script exited with code {code}"


def _pump(fd: int, output: _Output) -> None:
    """Copy the script's output as it comes, in bounded chunks: nothing is lost however fast it
    prints, and memory stays constant however much."""
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            return
        output.write(data)


def finish(
    workspace: Workspace,
    store: RunStore,
    record: RunRecord,
    folder: Path,
    output: _Output,
    status: str,
    code: int | None,
    error: str | None,
) -> None:
    from kiln.secrets import redact

    if not store.update(record.id, status=FINALIZING):
        return  # somebody else finished it (settle, or a cancel of a run that never started)
    values: dict[str, Any] = {
        "status": status,
        "exit_code": code,
        "error": redact(error) if error else None,  # e.g. a message from a Ray cluster
    }
    with contextlib.suppress(OSError, KilnError):
        values.update(collect_outputs(workspace, folder / "work" / "outputs"))
    output.line(f"run {record.id}: {status}" + (f" ({values['error']})" if error else ""))
    output.file.flush()
    values["log_digest"] = workspace.artifacts.put_file(folder / LOG_FILE)
    values["ended_at"] = time.time()
    # The metrics and the final state in one transaction: a run is never final without them,
    # nor are they stored twice.
    store.finish(record.id, list(read_metrics(folder / METRICS_FILE)), **values)
    shutil.rmtree(folder / "work", ignore_errors=True)


def collect_outputs(workspace: Workspace, outputs: Path) -> dict[str, Any]:
    from kiln.environment.files import context_files

    if not outputs.is_dir():
        return {}
    listing = [
        {"name": f"outputs/{rel}", "size": path.stat().st_size}
        for rel, path in context_files(outputs, field="outputs")
    ]
    if not listing:
        return {}
    digest = workspace.artifacts.put_tree(outputs, field="outputs")
    return {"outputs_digest": digest, "outputs": listing}
