"""Run records in the registry database, through the query functions of ``registry/`` (on the
embedded registry their standard-library twins, so a warm ``kiln run submit`` never imports
SQLAlchemy; for a workspace served by ``kiln server``, requests to it; see
registry/run_database.py). Times are epoch seconds, JSON is text."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from kiln.errors import InvalidRequest, NotFound
from kiln.registry.run_database import open_run_database

if TYPE_CHECKING:
    from kiln.workspace import Workspace

QUEUED = "Queued"
PREPARING = "Preparing"  # materializing the environment
RUNNING = "Running"
FINALIZING = "Finalizing"  # collecting outputs
COMPLETED = "Completed"
FAILED = "Failed"
CANCELED = "Canceled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELED})
STATUSES = (QUEUED, PREPARING, RUNNING, FINALIZING, COMPLETED, FAILED, CANCELED)


def _plain_name(what: str, value: str, most: int, example: str = "") -> str:
    """Letters, digits, '_', '.' and '-', starting with a letter or digit: never a path."""
    if not re.fullmatch(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{most - 1}}}", value or ""):
        raise InvalidRequest(
            f"{what} {value!r} is not valid: use letters, digits, '_', '.' and '-', starting "
            f"with a letter or digit, at most {most} characters{example}"
        )
    return value


def check_experiment_name(name: str) -> str:
    return _plain_name("experiment name", name, 100, " (e.g. 'train-iris')")


def check_run_id(run_id: str) -> str:
    """A run id names a folder on the machines that keep its files."""
    return _plain_name("run id", run_id, 128)


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise InvalidRequest(
            f"`status`: {status!r} is not a run status; use one of {', '.join(STATUSES)}"
        )
    return status


def new_run_id(experiment: str) -> str:
    """Azure's shape: EXPERIMENT_UNIXTIME_RANDOM, sortable by time within an experiment."""
    return f"{experiment}_{int(time.time())}_{uuid.uuid4().hex[:8]}"


@dataclass
class RunRecord:
    id: str
    experiment: str
    status: str
    script: str
    arguments: list[str]
    snapshot_digest: str
    env_name: str
    env_version: str
    build_hash: str
    compute_target: str
    created_at: float
    lock_digest: str | None = None
    platform: str | None = None
    target_job_id: str | None = None
    watcher: str | None = None
    process_group: int | None = None
    cancel_requested: bool = False
    exit_code: int | None = None
    error: str | None = None
    log_digest: str | None = None
    outputs_digest: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    reproduces: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    image_reference: str | None = None  # the image a container run ran in
    image_digest: str | None = None  # its manifest digest; set before the run (reproduce) pins it
    created_by: str | None = None  # who submitted it
    # On a team server: the manifests of the snapshot and outputs in its artifact store.
    snapshot_manifest: str | None = None
    outputs_manifest: str | None = None

    @property
    def environment(self) -> str:
        return f"{self.env_name}:{self.env_version}"

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def to_row(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["arguments"] = json.dumps(self.arguments)
        row["outputs"] = json.dumps(self.outputs)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord:
        data = dict(row)
        data["arguments"] = json.loads(data["arguments"])
        data["outputs"] = json.loads(data["outputs"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)


def _encoded(values: Mapping[str, Any]) -> dict[str, Any]:
    """Column values as stored: the JSON columns as text."""
    return {k: json.dumps(v) if k in ("arguments", "outputs") else v for k, v in values.items()}


def _metric_rows(metrics: Sequence[tuple[str, Any, float]]) -> list[tuple[str, str, float]]:
    return [(name, json.dumps(value), logged_at) for name, value, logged_at in metrics]


class RunStore:
    """Create, read and update run records and their metrics."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.db = open_run_database(workspace)
        self.queries = self.db.queries

    def close(self) -> None:
        self.db.close()

    def insert(self, record: RunRecord) -> None:
        with self.db.writing() as tx:
            self.queries.insert_run(tx, row=record.to_row())

    def get(self, run_id: str) -> RunRecord:
        with self.db.reading() as connection:
            row = self.queries.get_run(connection, run_id=run_id)
        if row is None:
            where = self.workspace.server_url or self.workspace.path
            raise NotFound(f"no run {run_id!r} in {where}; see `kiln run list`")
        return RunRecord.from_row(row)

    def find(
        self,
        *,
        experiment: str | None = None,
        env_name: str | None = None,
        env_version: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        with self.db.reading() as connection:
            rows = self.queries.find_runs(
                connection,
                experiment=experiment,
                env_name=env_name,
                env_version=env_version,
                status=status,
                limit=limit,
                offset=offset,
            )
        return [RunRecord.from_row(r) for r in rows]

    def update(self, run_id: str, *, unless_finished: bool = True, **values: Any) -> bool:
        """Set columns of a run. With ``unless_finished`` a run already in a final state is
        left alone (two watchers, or a watcher and ``settle``, never both finish it)."""
        with self.db.writing() as tx:
            return self.queries.update_run(
                tx,
                run_id=run_id,
                values=_encoded(values),
                unless_status=TERMINAL if unless_finished else (),
            )

    def finish(self, run_id: str, metrics: Sequence[tuple[str, Any, float]], **values: Any) -> bool:
        """The final state and the metrics together, once: False if the run had ended already."""
        return self.db.finish_run(
            run_id=run_id,
            values=_encoded(values),
            unless_status=TERMINAL,
            metrics=_metric_rows(metrics),
        )

    def take_over(self, run_id: str, old_watcher: str | None, new_watcher: str) -> bool:
        """Become the run's watcher if ``old_watcher`` still is (only one settler wins)."""
        with self.db.writing() as tx:
            return self.queries.take_over_run(
                tx,
                run_id=run_id,
                old_watcher=old_watcher,
                new_watcher=new_watcher,
                unless_status=TERMINAL,
            )

    def add_metrics(self, run_id: str, metrics: Sequence[tuple[str, Any, float]]) -> None:
        if metrics:
            with self.db.writing() as tx:
                self.queries.insert_metrics(tx, run_id=run_id, metrics=_metric_rows(metrics))

    def metrics(self, run_id: str) -> list[tuple[str, Any]]:
        """(name, value) of the run's stored metrics, in the order they were logged."""
        with self.db.reading() as connection:
            rows = self.queries.list_metrics(connection, run_id=run_id)
        return [(name, json.loads(value)) for name, value in rows]

    # Named compute targets.
    def add_target(self, name: str, kind: str, address: str) -> None:
        from kiln.accounts import local_actor

        with self.db.writing() as tx:
            self.queries.put_target(
                tx,
                name=name,
                kind=kind,
                address=address,
                created_at=time.time(),
                created_by=local_actor(),
            )

    def targets(self) -> list[dict[str, Any]]:
        with self.db.reading() as connection:
            return self.queries.list_targets(connection)

    def remove_target(self, name: str) -> bool:
        with self.db.writing() as tx:
            return self.queries.delete_target(tx, name=name)
