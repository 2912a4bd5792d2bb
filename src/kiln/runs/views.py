"""What a run looks like from outside: its details, metrics, files and live log."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kiln.compute.runfolder import LOG_FILE, local_side, run_folder
from kiln.environment import ANONYMOUS_NAME
from kiln.errors import KilnError, NotFound
from kiln.runs.context import METRICS_FILE, metrics_view, read_metrics
from kiln.runs.processes import copy_new_bytes
from kiln.runs.sharedfiles import output_file
from kiln.runs.store import RunRecord, RunStore
from kiln.workspace import Workspace

if TYPE_CHECKING:
    from kiln.blobstores.base import BlobStore

LOG_NAME = f"logs/{LOG_FILE}"


def _utc(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="milliseconds")


def summary(record: RunRecord) -> dict[str, Any]:
    """One row of ``run list`` (the public ``run-summary``)."""
    from kiln.utctime import utc_text

    return {
        "id": record.id,
        "experiment": record.experiment,
        "status": record.status,
        "environment": record.environment,
        "target": record.compute_target,
        "created_at": utc_text(record.created_at),
        "exit_code": record.exit_code,
    }


def metrics(workspace: Workspace, record: RunRecord) -> dict[str, Any]:
    """Stored metrics; while the run goes on, also those the script has written so far."""
    store = RunStore(workspace)
    try:
        stored = store.metrics(record.id)
    finally:
        store.close()
    if not record.finished:
        live = read_metrics(run_folder(workspace, record.id) / METRICS_FILE)
        stored += [(name, value) for name, value, _ in live]
    return metrics_view(stored)


def details(workspace: Workspace, record: RunRecord) -> dict[str, Any]:
    """The run as the public ``run`` schema shows it (the SDK renames a few keys to Azure's)."""
    duration = None
    if record.started_at is not None:
        duration = round((record.ended_at or time.time()) - record.started_at, 3)
    return {
        "id": record.id,
        "experiment": record.experiment,
        "status": record.status,
        "target": record.compute_target,
        "script": record.script,
        "arguments": record.arguments,
        "environment": {
            "name": record.env_name,
            "version": record.env_version,
            "build_hash": record.build_hash,
            "lock_digest": record.lock_digest,
            "platform": record.platform,
        },
        "snapshot_digest": record.snapshot_digest,
        "created_at": _utc(record.created_at),
        "started_at": _utc(record.started_at),
        "ended_at": _utc(record.ended_at),
        "duration_seconds": duration,
        "exit_code": record.exit_code,
        "error": record.error,
        "cancel_requested": record.cancel_requested,
        "metrics": metrics(workspace, record),
        "outputs": record.outputs,
        "files": file_names(record),
        "reproduces": record.reproduces,
        "target_job_id": record.target_job_id,
        "image": (
            {"reference": record.image_reference, "digest": record.image_digest}
            if record.image_digest
            else None
        ),
    }


def file_names(record: RunRecord) -> list[str]:
    return [o["name"] for o in record.outputs] + [LOG_NAME]


def open_file(
    workspace: Workspace, record: RunRecord, name: str, *, store: BlobStore | None = None
) -> Path:
    """A path to read the run's file ``name`` (as listed by ``file_names``). ``store``: on the
    server host, the server's artifact store, when it is not the workspace's own (S3)."""
    artifacts = local_side(workspace).artifacts
    if name == LOG_NAME:
        path = _log(workspace, record)
        if path is not None:
            return path
    elif name in {o["name"] for o in record.outputs} and record.outputs_digest:
        shared = output_file(workspace, record, name, store)  # a server's store keeps it
        if shared is not None:
            return shared
        tree = artifacts.lookup(record.outputs_digest)
        if tree is not None:
            return tree / name.removeprefix("outputs/")
        if workspace.server_url is not None:
            from kiln.runs.processes import host_of

            raise NotFound(
                f"the outputs of run {record.id} are on the machine that ran it "
                f"({host_of(record.watcher) or 'unknown'}) and not in the server's artifact "
                "store; download them there"
            )
    raise NotFound(
        f"run {record.id} has no file {name!r}; its files: {', '.join(file_names(record))}"
    )


def _log(workspace: Workspace, record: RunRecord) -> Path | None:
    """The stored log, else the live one on this machine, else (a server's run watched on
    another machine) the text the server keeps, fetched into the run's folder here."""
    stored = (
        local_side(workspace).artifacts.lookup(record.log_digest) if record.log_digest else None
    )
    live = run_folder(workspace, record.id) / LOG_FILE
    if stored is not None or live.exists():
        return stored or live
    if workspace.server_url is None:
        return None
    from kiln.registry.server_runs import download_log

    fetched = run_folder(workspace, record.id) / "fetched.log"
    fetched.parent.mkdir(parents=True, exist_ok=True)
    return fetched if download_log(workspace.server_url, record.id, fetched) else None


def follow(
    workspace: Workspace, run_id: str, echo: IO[bytes] | None, *, timeout: float | None = None
) -> RunRecord:
    """Wait for the run to end, copying its log to ``echo`` as it grows."""
    from kiln.runs.ending import get

    log = run_folder(workspace, run_id) / LOG_FILE
    offset = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        record = get(workspace, run_id)  # read before the log: the last bytes are in by the end
        if echo is not None:
            offset = _copy_new(workspace, run_id, log, offset, echo)
        if record.finished:
            return record
        if deadline is not None and time.monotonic() > deadline:
            raise KilnError(f"run {run_id} is still {record.status} after {timeout:g} s")
        time.sleep(0.1 if workspace.server_url is None else 0.5)


def _copy_new(workspace: Workspace, run_id: str, log: Path, offset: int, echo: IO[bytes]) -> int:
    """What the log gained since ``offset``: from the live log on this machine, or for a server's
    run watched on another machine, from the log the server keeps (the same bytes, later)."""
    if workspace.server_url is None or log.exists():
        return copy_new_bytes(log, offset, echo)
    from kiln.registry.server_runs import read_log_from

    while data := read_log_from(workspace.server_url, run_id, offset):
        echo.write(data)
        offset += len(data)
    echo.flush()
    return offset


def newer_versions(workspace: Workspace, record: RunRecord) -> list[str]:
    """Versions of the run's environment registered after the one it used."""
    from kiln.envlist import list_versions

    if record.env_name.startswith("Kiln-") or record.env_name == ANONYMOUS_NAME:
        return []
    found = list_versions(
        workspace, all_versions=True, name_contains=record.env_name, include_curated=False
    )
    versions = [s["version"] for s in found if s["name"] == record.env_name]
    if record.env_version not in versions:
        return []
    return versions[versions.index(record.env_version) + 1 :]
