"""The run functions every face calls (the CLI, the SDK, the team server next): submit, list,
describe, read and download runs, and name compute targets. Each is one call: the faces only
parse and print."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from kiln.errors import InvalidRequest
from kiln.runs.ending import settle
from kiln.runs.store import STATUSES, RunRecord, RunStore, check_status
from kiln.runs.submission import (
    RunRequest,
    cancel,
    get,
    prepare,
    reproduce_request,
    start_detached,
)
from kiln.runs.targets import add_target, list_targets, remove_target
from kiln.runs.views import LOG_NAME, details, file_names, follow, newer_versions, open_file

if TYPE_CHECKING:
    from kiln.workspace import Workspace

__all__ = [
    "STATUSES",
    "RunRequest",
    "RunView",
    "add_target",
    "cancel",
    "describe_run",
    "follow",
    "get",
    "list_runs",
    "list_targets",
    "log_metrics",
    "log_path",
    "remove_target",
    "reproduce",
    "save_file",
    "save_files",
    "submit",
]


def submit(
    workspace: Workspace,
    request: RunRequest,
    *,
    detach: bool = False,
    echo: IO[bytes] | None = None,
    on_recorded: Callable[[RunRecord], None] | None = None,
) -> RunRecord:
    """Record the run, then hand it to a background watcher (``detach``) or watch it here to
    its end, its output copied to ``echo``. ``on_recorded`` sees the record before it starts."""
    from kiln.runs.execution import execute

    prepared = prepare(workspace, request)
    if detach:
        start_detached(workspace, prepared)
        return prepared.record
    if on_recorded is not None:
        on_recorded(prepared.record)
    return execute(workspace, prepared.record.id, echo=echo, ready=prepared.ready)


def reproduce(
    workspace: Workspace,
    run_id: str,
    *,
    detach: bool = False,
    echo: IO[bytes] | None = None,
    on_recorded: Callable[[RunRecord], None] | None = None,
) -> RunRecord:
    """Run ``run_id`` again: its snapshot, environment version, lock and target."""
    request = reproduce_request(workspace, run_id)
    return submit(workspace, request, detach=detach, echo=echo, on_recorded=on_recorded)


def list_runs(
    workspace: Workspace,
    *,
    experiment: str | None = None,
    environment: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[RunRecord]:
    """Runs, newest first, filtered and paged in the database; ``environment`` is NAME or
    NAME:VERSION, ``status`` one of ``STATUSES``, ``offset`` how many matching runs to skip.
    Runs whose watcher died are settled first, so none is shown running when it is not (a
    run asked for as Running may so come back Failed: it ended as it was asked for)."""
    name, _, version = (environment or "").partition(":")
    if status is not None:
        check_status(status)
    if limit < 1:
        raise InvalidRequest(f"`limit`: {limit} is too small; ask for 1 or more runs")
    if offset < 0:
        raise InvalidRequest(f"`offset`: {offset} is negative; skip 0 or more runs")
    store = RunStore(workspace)
    try:
        found = store.find(
            experiment=experiment,
            env_name=name or None,
            env_version=version or None,
            status=status,
            limit=limit,
            offset=offset,
        )
    finally:
        store.close()
    return [settle(workspace, record) for record in found]


class RunView(NamedTuple):
    record: RunRecord
    details: dict[str, Any]  # ``views.details``, with the environment's newer versions


def describe_run(workspace: Workspace, run_id: str) -> RunView:
    record = get(workspace, run_id)
    info = details(workspace, record)
    info["environment"]["newer_versions"] = newer_versions(workspace, record)
    return RunView(record, info)


def log_path(workspace: Workspace, run_id: str) -> Path:
    """The run's log as it is now (the stored one once the run has ended)."""
    return open_file(workspace, get(workspace, run_id), LOG_NAME)


def save_file(workspace: Workspace, run_id: str, name: str, target: Path) -> Path:
    """Copy the run's file ``name`` (as ``views.file_names`` lists it) to ``target``, or into
    it when it is a folder; returns the copy."""
    return _copy(open_file(workspace, get(workspace, run_id), name), name, target)


def save_files(
    workspace: Workspace, run_id: str, directory: Path, *, prefix: str = ""
) -> list[Path]:
    """Copy the run's files whose names start with ``prefix`` under ``directory``, by name:
    all found (and, from a server's store, checked) before any is written."""
    record = get(workspace, run_id)  # once: each get settles and opens the store
    names = [n for n in file_names(record) if n.startswith(prefix)]
    sources = [open_file(workspace, record, name) for name in names]
    return [
        _copy(source, name, directory / name) for source, name in zip(sources, names, strict=True)
    ]


def _copy(source: Path, name: str, target: Path) -> Path:
    if target.is_dir():
        target = target / Path(name).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def log_metrics(workspace: Workspace, run_id: str, metrics: dict[str, Any]) -> None:
    """Metrics logged from outside the run's script (the SDK's ``Run.log``)."""
    from kiln.runs.context import checked_metric

    now = time.time()
    pairs = [(name, checked_metric(name, value), now) for name, value in metrics.items()]
    store = RunStore(workspace)
    try:
        store.add_metrics(run_id, pairs)
    finally:
        store.close()
