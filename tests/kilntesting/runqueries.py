"""The run, metric and target query steps every ``RunDatabase`` is checked with: the same
steps on SQLAlchemy, on the standard library and through a server give the same results."""

from __future__ import annotations

from typing import Any

from kiln.registry.run_database import RunDatabase

FINISHED = ("Completed", "Failed", "Canceled")


def run_row(run_id: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": run_id,
        "experiment": "exp",
        "status": "Queued",
        "script": "train.py",
        "arguments": '["--epochs", "2"]',
        "snapshot_digest": "s" * 64,
        "env_name": "train",
        "env_version": "1",
        "build_hash": "b" * 64,
        "compute_target": "local",
        "outputs": "[]",
        "cancel_requested": False,
        "created_at": 1.0,
    }
    return {**row, **values}


def _runs(db: RunDatabase, seen: list[object]) -> None:
    q = db.queries
    with db.writing() as tx:
        q.insert_run(tx, row=run_row("exp_1"))
        q.insert_run(tx, row=run_row("exp_2", env_version="2", created_at=2.0, created_by="ann"))
        q.insert_run(
            tx, row=run_row("other_1", experiment="other", created_at=3.0, created_by="ann")
        )
    with db.reading() as c:
        seen.append(q.get_run(c, run_id="missing"))
        seen.append([r["id"] for r in q.find_runs(c, limit=10)])
        seen.append([r["id"] for r in q.find_runs(c, experiment="exp", limit=10)])
        seen.append([r["id"] for r in q.find_runs(c, env_name="train", env_version="2", limit=9)])
        seen.append([r["id"] for r in q.find_runs(c, limit=1)])
        seen.append([r["id"] for r in q.find_runs(c, limit=2, offset=1)])
        seen.append([r["id"] for r in q.find_runs(c, experiment="exp", limit=5, offset=1)])
    with db.writing() as tx:
        running = {"status": "Running", "watcher": "w1", "cancel_requested": True}
        seen.append(q.update_run(tx, run_id="exp_1", values=running, unless_status=FINISHED))
        seen.append(q.take_over_run(tx, run_id="exp_1", old_watcher="w0", new_watcher="w2"))
        seen.append(
            q.take_over_run(
                tx, run_id="exp_1", old_watcher="w1", new_watcher="w2", unless_status=FINISHED
            )
        )
        seen.append(q.take_over_run(tx, run_id="exp_2", old_watcher=None, new_watcher="w2"))
        done = {
            "status": "Completed",
            "exit_code": 0,
            "ended_at": 5.5,
            "image_reference": "localhost/kiln/env:k",
            "image_digest": "sha256:" + "a" * 64,
        }
        seen.append(q.update_run(tx, run_id="exp_1", values=done, unless_status=FINISHED))
        again = {"status": "Failed"}
        seen.append(q.update_run(tx, run_id="exp_1", values=again, unless_status=FINISHED))
        seen.append(
            q.take_over_run(
                tx, run_id="exp_1", old_watcher="w2", new_watcher="w3", unless_status=FINISHED
            )
        )
        seen.append(q.update_run(tx, run_id="exp_1", values={"error": "a note"}))
        seen.append(q.update_run(tx, run_id="missing", values={"error": "x"}))
    with db.reading() as c:
        seen.append(q.get_run(c, run_id="exp_1"))
        seen.append([r["id"] for r in q.find_runs(c, status="Completed", limit=10)])
        seen.append([r["id"] for r in q.find_runs(c, status="Queued", limit=10)])
        seen.append([r["id"] for r in q.find_runs(c, status="Queued", limit=1, offset=1)])
        seen.append(q.find_runs(c, status="Running", limit=10))


def _metrics_and_targets(db: RunDatabase, seen: list[object]) -> None:
    q = db.queries
    with db.writing() as tx:
        metrics = [("loss", "0.5", 1.0), ("loss", "0.25", 2.0), ("acc", "[1, 2]", 3.0)]
        q.insert_metrics(tx, run_id="exp_1", metrics=metrics)
        q.insert_metrics(tx, run_id="exp_2", metrics=[])
        q.put_target(
            tx, name="b", kind="ray", address="ray://b:1", created_at=1.0, created_by="ann"
        )
        q.put_target(
            tx, name="a", kind="ray", address="ray://a:1", created_at=2.0, created_by="ann"
        )
        q.put_target(
            tx, name="a", kind="ray", address="ray://a:2", created_at=3.0, created_by="ann"
        )
    with db.reading() as c:
        seen.append(q.list_metrics(c, run_id="exp_1"))
        seen.append(q.list_metrics(c, run_id="exp_2"))
        seen.append(q.list_targets(c))
    with db.writing() as tx:
        seen.append(q.delete_target(tx, name="a"))
        seen.append(q.delete_target(tx, name="a"))
    with db.reading() as c:
        seen.append([t["name"] for t in q.list_targets(c)])


def query_steps(db: RunDatabase) -> list[object]:
    seen: list[object] = []
    _runs(db, seen)
    _metrics_and_targets(db, seen)
    return seen


EXPECTED_FINISHED_RUN = run_row(
    "exp_1",
    status="Completed",
    watcher="w2",
    cancel_requested=True,
    exit_code=0,
    ended_at=5.5,
    error="a note",
    lock_digest=None,
    platform=None,
    target_job_id=None,
    process_group=None,
    log_digest=None,
    outputs_digest=None,
    reproduces=None,
    started_at=None,
    image_reference="localhost/kiln/env:k",
    image_digest="sha256:" + "a" * 64,
    created_by=None,  # these steps leave it out
    snapshot_manifest=None,  # a team server's, checked against its store
    outputs_manifest=None,
)
