"""What a team server does for the runs its clients carry out. A run is prepared, built and
watched on the client (kiln.runs.execution, the same code as on a folder); its record, metrics,
log text and the named targets are the server's, written through these functions
(registry/server_runs.py asks for them over the API).

Who may write is decided here, with the same rules as environments: a reader writes nothing; a
contributor submits runs and changes (watches, cancels, ends, logs metrics to) only the runs it
submitted; an admin changes any. Who submitted a run is its ``created_by``: the user of the token
that recorded it, whatever the client sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kiln.accounts import Actor, require_owner, require_writer
from kiln.compute.runfolder import LOG_FILE, run_folder
from kiln.errors import Conflict, InvalidRequest, NotFound
from kiln.runs.store import RunStore, check_experiment_name, check_run_id

STAGED_LOG = f".{LOG_FILE}.upload"  # a log on its way: the server shows it until it is whole
DROPPED_LOG = f".{LOG_FILE}.dropped"  # how many bytes past the limit the upload sent and lost
MAX_LOG_VARIABLE = "KILN_SERVER_MAX_RUN_LOG_MB"
MAX_LOG_MB = 256.0

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from kiln.blobstores.base import BlobStore
    from kiln.workspace import Workspace


@contextlib.contextmanager
def _writing(workspace: Workspace) -> Iterator[Connection]:
    from kiln.registry.engine import write_transaction

    with write_transaction(workspace.engine) as connection:
        yield connection


def _audit(connection: Connection, actor: Actor, action: str, subject: str) -> None:
    from kiln.registry.account_queries import record_action

    record_action(connection, actor=actor.name, action=action, subject=subject)


def _check_owner(connection: Connection, actor: Actor, run_id: str, *, missing: bool) -> None:
    """Refuse unless ``actor`` may change the run; a run that does not exist is refused too,
    unless ``missing`` (the write then changes nothing and says so, as the query does)."""
    from kiln.registry.run_queries import get_run

    require_writer(actor)
    row = get_run(connection, run_id=run_id)
    if row is None:
        if missing:
            return
        raise NotFound(f"no run {run_id!r}; see `kiln run list`")
    require_owner(actor, [row["created_by"]], f"run {run_id}")


def _checked_files(
    workspace: Workspace,
    store: BlobStore,
    run_id: str,
    values: Mapping[str, Any],
) -> dict[str, Any]:
    """``values`` (columns as stored) once the files they name are checked against the artifact
    store: a manifest must list the snapshot or outputs the record names, and the store must
    hold each file; the outputs' listing is the manifest's. So a run never shows files the
    store does not have, whatever the client sent (an upload cut off midway, say)."""
    from kiln.filetrees import check_stored
    from kiln.runs.sharedfiles import listing

    checked = dict(values)
    outputs_named = values.get("outputs_digest") or json.loads(values.get("outputs") or "[]")
    if values.get("outputs_manifest") is None and outputs_named:
        raise InvalidRequest(
            f"run {run_id}: its outputs need `outputs_manifest`, the manifest of their files in "
            "the artifact store; upload them first (Kiln's client does)"
        )
    for kind in ("snapshot", "outputs"):
        manifest = values.get(f"{kind}_manifest")
        if manifest is None:
            continue
        tree = values.get(f"{kind}_digest") or _recorded(workspace, run_id).get(f"{kind}_digest")
        what = f"the {kind} of run {run_id}"
        entries = check_stored(store, manifest, tree_digest=str(tree), what=what)
        if kind == "outputs":
            checked.update(outputs_digest=tree, outputs=json.dumps(listing(entries)))
    return checked


def _recorded(workspace: Workspace, run_id: str) -> dict[str, Any]:
    from kiln.registry.run_queries import get_run

    with workspace.engine.connect() as connection:
        row = get_run(connection, run_id=run_id)
    return dict(row or {})


def record_run(
    workspace: Workspace, actor: Actor, row: Mapping[str, Any], store: BlobStore
) -> None:
    """Store a new run submitted by ``actor``."""
    from kiln.registry.run_queries import get_run, insert_run

    require_writer(actor)
    check_run_id(str(row["id"]))
    check_experiment_name(str(row["experiment"]))
    row = _checked_files(workspace, store, str(row["id"]), row)
    with _writing(workspace) as tx:
        if get_run(tx, run_id=row["id"]) is not None:
            raise Conflict(f"run {row['id']!r} exists already; submit it anew")
        insert_run(tx, row={**row, "created_by": actor.name})  # the token's, not the client's
        _audit(tx, actor, "run.submit", str(row["id"]))


def change_run(
    workspace: Workspace,
    actor: Actor,
    run_id: str,
    values: Mapping[str, Any],
    unless_status: Collection[str],
    store: BlobStore,
) -> bool:
    """Set columns of the run unless its status is in ``unless_status``; False then."""
    from kiln.registry.run_queries import update_run

    require_writer(actor)
    values = _checked_files(workspace, store, run_id, values)
    with _writing(workspace) as tx:
        _check_owner(tx, actor, run_id, missing=True)
        changed = update_run(tx, run_id=run_id, values=values, unless_status=unless_status)
        if changed and values.get("cancel_requested"):
            _audit(tx, actor, "run.cancel", run_id)
    return changed


def take_over(
    workspace: Workspace,
    actor: Actor,
    run_id: str,
    *,
    old_watcher: str | None,
    new_watcher: str,
    unless_status: Collection[str],
) -> bool:
    """Become the run's watcher if ``old_watcher`` still is (one settler wins)."""
    from kiln.registry.run_queries import take_over_run

    with _writing(workspace) as tx:
        _check_owner(tx, actor, run_id, missing=True)
        return take_over_run(
            tx,
            run_id=run_id,
            old_watcher=old_watcher,
            new_watcher=new_watcher,
            unless_status=unless_status,
        )


def end_run(
    workspace: Workspace,
    actor: Actor,
    run_id: str,
    values: Mapping[str, Any],
    unless_status: Collection[str],
    metrics: Sequence[tuple[str, str, float]],
    store: BlobStore,
) -> bool:
    """The final state, the outputs and the metrics in one transaction, once."""
    from kiln.registry.run_queries import insert_metrics, update_run

    require_writer(actor)
    values = _checked_files(workspace, store, run_id, values)
    with _writing(workspace) as tx:
        _check_owner(tx, actor, run_id, missing=True)
        if not update_run(tx, run_id=run_id, values=values, unless_status=unless_status):
            return False
        insert_metrics(tx, run_id=run_id, metrics=metrics)
    return True


def add_metrics(
    workspace: Workspace, actor: Actor, run_id: str, metrics: Sequence[tuple[str, str, float]]
) -> None:
    from kiln.registry.run_queries import insert_metrics

    with _writing(workspace) as tx:
        _check_owner(tx, actor, run_id, missing=False)
        insert_metrics(tx, run_id=run_id, metrics=metrics)


def max_log_bytes() -> int:
    """How much of one run's log the server keeps (``KILN_SERVER_MAX_RUN_LOG_MB``): a chatty
    or hostile client must not fill the server's disk."""
    text = os.environ.get(MAX_LOG_VARIABLE, "")
    try:
        megabytes = float(text) if text else MAX_LOG_MB
    except ValueError:
        megabytes = MAX_LOG_MB
    return int(max(megabytes, 0.0) * 1024 * 1024)


def put_log(
    workspace: Workspace, actor: Actor, run_id: str, *, offset: int, data: bytes, last: bool
) -> None:
    """Receive the run's log chunk by chunk; only the whole of it replaces the log the server
    shows, so a cut-off upload never passes for the log. Past ``max_log_bytes`` the server
    counts what it is sent but keeps none of it, and the log it shows ends with a line that
    says where it was cut (the machine that ran the run keeps all of it)."""
    with workspace.engine.connect() as connection:
        _check_owner(connection, actor, run_id, missing=False)
    folder = run_folder(workspace, check_run_id(run_id))
    folder.mkdir(parents=True, exist_ok=True)
    partial, dropped_file = folder / STAGED_LOG, folder / DROPPED_LOG
    size = partial.stat().st_size if offset and partial.exists() else 0
    dropped = int(dropped_file.read_text() or 0) if offset and dropped_file.exists() else 0
    if offset != size + dropped:
        raise Conflict(
            f"the log upload of run {run_id} is at byte {size + dropped}, not {offset}; retry"
        )
    if not offset:
        dropped_file.unlink(missing_ok=True)
    limit = max_log_bytes()
    kept = data[: max(0, limit - size)]
    with partial.open("ab" if offset else "wb") as handle:
        handle.write(kept)
        if last and (dropped or len(kept) < len(data)):
            handle.write(
                f"\n[kiln server: this log was cut at {limit} bytes ({MAX_LOG_VARIABLE}); the "
                "machine that ran the run keeps all of it]\n".encode()
            )
    if len(kept) < len(data):
        # Written after the bytes it accounts for: a crash in between makes the next chunk's
        # offset disagree, and the client starts over from byte 0.
        dropped_file.write_text(str(dropped + len(data) - len(kept)))
    if last:
        os.replace(partial, folder / LOG_FILE)
        dropped_file.unlink(missing_ok=True)


def read_log(workspace: Workspace, run_id: str, *, offset: int, limit: int) -> bytes:
    """``limit`` bytes of the run's log from ``offset``: the whole log once it came, before
    that what came so far (a running run's)."""
    folder = run_folder(workspace, check_run_id(run_id))
    for log in (folder / LOG_FILE, folder / STAGED_LOG):
        try:
            with log.open("rb") as handle:
                handle.seek(offset)
                return handle.read(limit)
        except FileNotFoundError:
            continue
    raise NotFound(f"the server has no log of run {run_id} yet")


def put_target(workspace: Workspace, actor: Actor, name: str, address: str) -> dict[str, Any]:
    """Name the target at ``address`` for the whole team (replacing one of that name)."""
    from kiln.compute.registry import check_target_name, named_target_kind
    from kiln.registry.target_queries import put_target as put

    require_writer(actor)
    check_target_name(name)
    kind = named_target_kind(address)
    with _writing(workspace) as tx:
        _check_target_owner(tx, actor, name)
        put(
            tx, name=name, kind=kind, address=address, created_at=time.time(), created_by=actor.name
        )
        _audit(tx, actor, "target.add", name)
    return {"name": name, "kind": kind, "address": address}


def _check_target_owner(connection: Connection, actor: Actor, name: str) -> bool:
    """Refuse unless ``actor`` may replace or remove the target ``name``; whether it exists."""
    from kiln.registry.target_queries import get_target

    row = get_target(connection, name=name)
    if row is not None:
        require_owner(actor, [row["created_by"]], f"target {name!r}")
    return row is not None


def remove_target(workspace: Workspace, actor: Actor, name: str) -> None:
    from kiln.registry.target_queries import delete_target

    require_writer(actor)
    with _writing(workspace) as tx:
        if not _check_target_owner(tx, actor, name) or not delete_target(tx, name=name):
            raise NotFound(f"no target {name!r}; see `kiln target list`")
        _audit(tx, actor, "target.remove", name)


def run_document(workspace: Workspace, run_id: str) -> dict[str, Any]:
    """The stored record as the API sends it (not settled: the client settles)."""
    from kiln.registry.server_runs import document_of

    store = RunStore(workspace)
    try:
        with store.db.reading() as connection:
            row = store.queries.get_run(connection, run_id=run_id)
    finally:
        store.close()
    if row is None:
        raise NotFound(f"no run {run_id!r}; see `kiln run list`")
    return document_of(row)


def run_documents(workspace: Workspace, **filters: Any) -> list[dict[str, Any]]:
    """Stored records, newest first; ``filters`` are ``RunQueries.find_runs``'s."""
    from kiln.registry.server_runs import document_of

    store = RunStore(workspace)
    try:
        with store.db.reading() as connection:
            return [document_of(r) for r in store.queries.find_runs(connection, **filters)]
    finally:
        store.close()


def metric_rows(workspace: Workspace, run_id: str) -> list[tuple[str, str]]:
    """(name, value as JSON text) of the run's stored metrics, in the order they were logged."""
    store = RunStore(workspace)
    try:
        with store.db.reading() as connection:
            return store.queries.list_metrics(connection, run_id=run_id)
    finally:
        store.close()


def target_rows(workspace: Workspace) -> list[dict[str, Any]]:
    """The named targets as stored, passwords redacted."""
    from kiln.secrets import redact

    store = RunStore(workspace)
    try:
        found = store.targets()
    finally:
        store.close()
    return [{**t, "address": redact(str(t["address"]))} for t in found]
