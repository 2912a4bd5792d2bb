"""How a run ends: its final state recorded once, with its metrics, log and outputs (``finish``),
and runs whose watcher died ended for it (``settle``)."""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING, Any

from kiln.compute.base import Ended, RunRef
from kiln.compute.runfolder import LOG_FILE, RunOutput, local_side, run_folder
from kiln.errors import Forbidden, KilnError
from kiln.runs import processes
from kiln.runs.context import METRICS_FILE, read_metrics
from kiln.runs.sharedfiles import store_outputs
from kiln.runs.store import CANCELED, COMPLETED, FAILED, FINALIZING, RunRecord, RunStore

if TYPE_CHECKING:
    from kiln.workspace import Workspace


def outcome(ended: Ended) -> tuple[str, int | None, str | None]:
    """(status, exit code, error) of the run record for how its script ended."""
    if ended.canceled:
        return CANCELED, ended.exit_code, "canceled"
    if ended.error is None:
        return COMPLETED, ended.exit_code, None
    return FAILED, ended.exit_code, ended.error


def finish(
    workspace: Workspace,
    store: RunStore,
    record: RunRecord,
    output: RunOutput,
    status: str,
    code: int | None,
    error: str | None,
) -> None:
    """Record the run's end: outputs and log into the artifact store (this machine's, for a
    server's workspace, which also gets the log's text), metrics and the final state in one
    transaction; a run somebody else finished meanwhile is left as it is."""
    from kiln.secrets import redact

    if not store.update(record.id, status=FINALIZING):
        return  # somebody else finished it (settle, or a cancel of a run that never started)
    folder = run_folder(workspace, record.id)
    values: dict[str, Any] = {
        "status": status,
        "exit_code": code,
        "error": redact(error) if error else None,  # e.g. a message from a Ray cluster
    }
    try:
        values.update(store_outputs(workspace, folder / "work" / "outputs"))
    except (OSError, KilnError) as exc:  # the run's end is recorded all the same, without them
        output.line(f"outputs not stored: {exc}")
    output.line(f"run {record.id}: {status}" + (f" ({values['error']})" if error else ""))
    output.file.flush()
    values["log_digest"] = local_side(workspace).artifacts.put_file(folder / LOG_FILE)
    if workspace.server_url is not None:  # `kiln run logs` on any machine: the server keeps it
        from kiln.registry.server_runs import finish_log_upload

        finish_log_upload(workspace.server_url, record.id, folder / LOG_FILE)
    values["ended_at"] = time.time()
    # The metrics and the final state in one transaction: a run is never final without them,
    # nor are they stored twice.
    store.finish(record.id, list(read_metrics(folder / METRICS_FILE)), **values)
    shutil.rmtree(folder / "work", ignore_errors=True)


def run_ref(record: RunRecord) -> RunRef:
    """The run as its target knows it, for cancel and settle."""
    return RunRef(
        run_id=record.id,
        address=record.compute_target,
        job_id=record.target_job_id,
        process_group=record.process_group,
        cancel_requested=record.cancel_requested,
        watcher=f"the Kiln process watching this run (pid {processes.pid_of(record.watcher)})",
    )


def settle(workspace: Workspace, record: RunRecord) -> RunRecord:
    """A run whose watcher died is ended for it: its target stops what is left and says how it
    ended. A run watched elsewhere, or still watched, or still going on its target, is returned
    unchanged. Several commands may notice at once: the one that takes the run over settles it."""
    from kiln.compute.registry import target_of

    if record.finished or processes.watcher_alive(record.watcher) is not False:
        return record
    token = processes.watcher_token()
    store = RunStore(workspace)
    try:
        try:
            if not store.take_over(record.id, record.watcher, token):
                return store.get(record.id)  # another command is settling it
        except Forbidden:
            return record  # someone else's run on a server: theirs, or an admin's, to settle
        ended = target_of(record.compute_target).abandoned(run_ref(record))
        if ended is None:
            # Still going on its target: handed back, so that whoever looks next asks again
            # (this process may live on, a notebook say, and would otherwise pass for its watcher).
            store.take_over(record.id, token, record.watcher or "")
            return record
    finally:
        store.close()
    folder = run_folder(workspace, record.id)
    folder.mkdir(parents=True, exist_ok=True)
    if ended.log is not None:
        (folder / LOG_FILE).write_text(ended.log, encoding="utf-8")  # the target kept it whole
    store = RunStore(workspace)
    output = RunOutput(folder / LOG_FILE, None)
    try:
        finish(workspace, store, record, output, *outcome(ended))
        return store.get(record.id)
    finally:
        output.close()
        store.close()


def get(workspace: Workspace, run_id: str) -> RunRecord:
    """The run, settled first if its watcher died."""
    store = RunStore(workspace)
    try:
        record = store.get(run_id)
    finally:
        store.close()
    return settle(workspace, record)
