"""Run, metric and compute-target queries: on SQLite and PostgreSQL through SQLAlchemy, and the
standard-library twins (the warm `kiln run submit` path) equal to them on the same steps."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from kiln.registry.run_database import (
    CoreRunDatabase,
    FastRunDatabase,
    open_run_database,
)
from kiln.workspace import Workspace
from kilntesting.runqueries import EXPECTED_FINISHED_RUN, query_steps, run_row


def test_run_queries_on_both_databases(workspace: Workspace) -> None:
    seen = query_steps(CoreRunDatabase(workspace.engine))
    assert seen[:7] == [
        None,
        ["other_1", "exp_2", "exp_1"],
        ["exp_2", "exp_1"],
        ["exp_2"],
        ["other_1"],
        ["exp_2", "exp_1"],  # paged: the newest skipped
        ["exp_1"],
    ]
    # running; wrong old watcher; taken over; no watcher to take; finished; finished already
    # (the guard holds); no take-over of a finished run; unguarded update; no such run
    assert seen[7:16] == [True, False, True, False, True, False, False, True, False]
    assert seen[16] == EXPECTED_FINISHED_RUN
    # by status, newest first, paged; none running
    assert seen[17:21] == [["exp_1"], ["other_1", "exp_2"], ["exp_2"], []]
    assert seen[21:] == [
        [("loss", "0.5"), ("loss", "0.25"), ("acc", "[1, 2]")],
        [],
        [
            {
                "name": "a",
                "kind": "ray",
                "address": "ray://a:2",
                "created_at": 3.0,
                "created_by": "ann",
            },
            {
                "name": "b",
                "kind": "ray",
                "address": "ray://b:1",
                "created_at": 1.0,
                "created_by": "ann",
            },
        ],
        True,
        False,
        ["b"],
    ]


def test_the_standard_library_queries_equal_the_sqlalchemy_ones(tmp_path: Any) -> None:
    full = Workspace.create(tmp_path / "full")
    fast = Workspace.create(tmp_path / "fast")
    try:
        database = open_run_database(fast)
        assert isinstance(database, FastRunDatabase)
        fast_steps, full_steps = query_steps(database), query_steps(CoreRunDatabase(full.engine))
        assert fast_steps == full_steps
        assert repr(fast_steps) == repr(full_steps)  # same types (True is not 1) and key order
        database.close()
    finally:
        full.close()
        fast.close()


def test_a_failed_write_leaves_nothing_behind(workspace: Workspace) -> None:
    database = open_run_database(workspace)
    with pytest.raises(RuntimeError), database.writing() as tx:
        database.queries.insert_run(tx, row=run_row("exp_1"))
        raise RuntimeError("interrupted")
    with database.reading() as c:
        assert database.queries.get_run(c, run_id="exp_1") is None
    database.close()


def test_postgresql_takes_the_sqlalchemy_path(workspace: Workspace) -> None:
    database = open_run_database(workspace)
    expected = FastRunDatabase if workspace.is_embedded else CoreRunDatabase
    assert type(database) is expected
    database.close()


def test_a_missing_registry_is_created_before_the_fast_path_writes(
    sqlite_workspace: Workspace,
) -> None:
    ws = sqlite_workspace
    ws.close()
    for suffix in ("", "-wal", "-shm"):
        ws.registry_file.with_name(ws.registry_file.name + suffix).unlink(missing_ok=True)
    reopened = Workspace(ws.path)
    database = open_run_database(reopened)
    assert isinstance(database, FastRunDatabase)
    with database.writing() as tx:
        database.queries.insert_run(tx, row=run_row("exp_1"))
    with database.reading() as connection:
        assert database.queries.get_run(connection, run_id="exp_1") is not None
    database.close()
    reopened.close()


def test_the_run_store_on_the_embedded_registry_never_imports_sqlalchemy(
    sqlite_workspace: Workspace,
) -> None:
    probe = (
        "import sys\n"
        "from kiln.workspace import Workspace\n"
        "from kiln.runs.store import RunRecord, RunStore\n"
        f"store = RunStore(Workspace({str(sqlite_workspace.path)!r}))\n"
        "store.insert(RunRecord('r1', 'exp', 'Queued', 't.py', [], 's', 'e', '1', 'b', 'local', 1.0))\n"
        "store.finish('r1', [('loss', 0.5, 2.0)], status='Completed')\n"
        "assert store.get('r1').status == 'Completed' and store.metrics('r1') == [('loss', 0.5)]\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
