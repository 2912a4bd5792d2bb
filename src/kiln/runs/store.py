"""Run records in the registry database, through ``plainsql`` (so a warm ``kiln run submit``
never imports SQLAlchemy). Times are epoch seconds, JSON is text."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from kiln.errors import InvalidRequest, NotFound
from kiln.registry.plainsql import Writer, open_database

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

_EXPERIMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_experiment_name(name: str) -> str:
    if not _EXPERIMENT.fullmatch(name or ""):
        raise InvalidRequest(
            f"experiment name {name!r} is not valid: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit, at most 100 characters (e.g. 'train-iris')"
        )
    return name


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


_COLUMNS = [f.name for f in fields(RunRecord)]
_INSERT = (
    f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)})"
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM runs"


_UNFINISHED = " AND status NOT IN ('Completed', 'Failed', 'Canceled')"


def _update(tx: Writer, run_id: str, values: dict[str, Any], *, unless_finished: bool) -> bool:
    for key in ("arguments", "outputs"):
        if key in values:
            values[key] = json.dumps(values[key])
    assignments = ", ".join(f"{k} = :{k}" for k in values)
    guard = _UNFINISHED if unless_finished else ""
    sql = f"UPDATE runs SET {assignments} WHERE id = :run_id{guard}"
    return tx.run(sql, {**values, "run_id": run_id}) > 0


def _insert_metrics(tx: Writer, run_id: str, metrics: Sequence[tuple[str, Any, float]]) -> None:
    for name, value, logged_at in metrics:
        tx.run(
            "INSERT INTO run_metrics (run_id, name, value, logged_at) "
            "VALUES (:run_id, :name, :value, :logged_at)",
            {"run_id": run_id, "name": name, "value": json.dumps(value), "logged_at": logged_at},
        )


class RunStore:
    """Create, read and update run records and their metrics."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.db = open_database(workspace)

    def close(self) -> None:
        self.db.close()

    def insert(self, record: RunRecord) -> None:
        with self.db.write() as tx:
            tx.run(_INSERT, record.to_row())

    def get(self, run_id: str) -> RunRecord:
        rows = self.db.rows(f"{_SELECT} WHERE id = :id", {"id": run_id})
        if not rows:
            raise NotFound(f"no run {run_id!r} in {self.workspace.path}; see `kiln run list`")
        return RunRecord.from_row(rows[0])

    def find(
        self,
        *,
        experiment: str | None = None,
        env_name: str | None = None,
        env_version: str | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        where: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        for column, value in (
            ("experiment", experiment),
            ("env_name", env_name),
            ("env_version", env_version),
        ):
            if value is not None:
                where.append(f"{column} = :{column}")
                params[column] = value
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        sql = f"{_SELECT}{clause} ORDER BY created_at DESC, id DESC LIMIT :limit"
        return [RunRecord.from_row(r) for r in self.db.rows(sql, params)]

    def update(self, run_id: str, *, unless_finished: bool = True, **values: Any) -> bool:
        """Set columns of a run. With ``unless_finished`` a run already in a final state is
        left alone (two watchers, or a watcher and ``settle``, never both finish it)."""
        with self.db.write() as tx:
            return _update(tx, run_id, values, unless_finished=unless_finished)

    def finish(self, run_id: str, metrics: Sequence[tuple[str, Any, float]], **values: Any) -> bool:
        """The final state and the metrics together, once: False if the run had ended already."""
        with self.db.write() as tx:
            if not _update(tx, run_id, values, unless_finished=True):
                return False
            _insert_metrics(tx, run_id, metrics)
        return True

    def take_over(self, run_id: str, old_watcher: str | None, new_watcher: str) -> bool:
        """Become the run's watcher if ``old_watcher`` still is (only one settler wins)."""
        with self.db.write() as tx:
            changed = tx.run(
                f"UPDATE runs SET watcher = :new WHERE id = :run_id AND watcher = :old{_UNFINISHED}",
                {"new": new_watcher, "run_id": run_id, "old": old_watcher or ""},
            )
        return changed > 0

    def add_metrics(self, run_id: str, metrics: Sequence[tuple[str, Any, float]]) -> None:
        if metrics:
            with self.db.write() as tx:
                _insert_metrics(tx, run_id, metrics)

    def metrics(self, run_id: str) -> list[tuple[str, Any]]:
        """(name, value) of the run's stored metrics, in the order they were logged."""
        rows = self.db.rows(
            "SELECT name, value FROM run_metrics WHERE run_id = :run_id ORDER BY id",
            {"run_id": run_id},
        )
        return [(row["name"], json.loads(row["value"])) for row in rows]

    # Named compute targets.
    def add_target(self, name: str, kind: str, address: str) -> None:
        with self.db.write() as tx:
            tx.run("DELETE FROM compute_targets WHERE name = :name", {"name": name})
            tx.run(
                "INSERT INTO compute_targets (name, kind, address, created_at) "
                "VALUES (:name, :kind, :address, :created_at)",
                {"name": name, "kind": kind, "address": address, "created_at": time.time()},
            )

    def targets(self) -> list[dict[str, Any]]:
        return self.db.rows("SELECT name, kind, address, created_at FROM compute_targets", {})

    def remove_target(self, name: str) -> bool:
        with self.db.write() as tx:
            return tx.run("DELETE FROM compute_targets WHERE name = :name", {"name": name}) > 0
