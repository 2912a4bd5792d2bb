"""``kiln run list``'s filters and paging, done by the database (SQLite and PostgreSQL): by
status, experiment and environment, newest first, a page at a time; a bad status is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.errors import InvalidRequest
from kiln.runs.core import list_runs
from kiln.runs.store import CANCELED, COMPLETED, FAILED, RunRecord, RunStore
from kiln.workspace import Workspace
from kilntesting.runs import kiln_cli


def _seed(ws: Workspace, count: int = 12) -> None:
    """Finished runs: every third failed, every fourth canceled; two experiments."""
    store = RunStore(ws)
    try:
        for i in range(count):
            status = FAILED if i % 3 == 0 else CANCELED if i % 4 == 0 else COMPLETED
            record = RunRecord(
                id=f"r{i:02d}", experiment=f"e{i % 2}", status=status, script="t.py",
                arguments=[], snapshot_digest="0" * 64, env_name="env",
                env_version=str(1 + i % 3), build_hash="0" * 64, compute_target="local",
                created_at=1000.0 + i,
            )  # fmt: skip
            store.insert(record)
    finally:
        store.close()


def _ids(ws: Workspace, **filters: object) -> list[str]:
    return [r.id for r in list_runs(ws, **filters)]  # type: ignore[arg-type]


def test_runs_are_filtered_and_paged_by_the_core(workspace: Workspace) -> None:
    _seed(workspace)
    assert _ids(workspace, status=FAILED) == ["r09", "r06", "r03", "r00"]
    assert _ids(workspace, status=FAILED, limit=2, offset=1) == ["r06", "r03"]
    assert _ids(workspace, status=CANCELED, experiment="e0") == ["r08", "r04"]
    assert _ids(workspace, status=COMPLETED, environment="env:3") == ["r11", "r05", "r02"]
    assert _ids(workspace, limit=3, offset=10) == ["r01", "r00"]
    assert _ids(workspace, status="Running") == []
    with pytest.raises(InvalidRequest) as raised:
        list_runs(workspace, status="failed")
    assert str(raised.value) == (
        "`status`: 'failed' is not a run status; use one of Queued, Preparing, Running, "
        "Finalizing, Completed, Failed, Canceled"
    )
    with pytest.raises(InvalidRequest, match=r"^`offset`: -1 is negative"):
        list_runs(workspace, offset=-1)


def test_kiln_run_list_status_and_offset(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    _seed(sqlite_workspace)
    cache = tmp_path / "cache"
    args = ["run", "list", "--status", "Failed", "--limit", "2", "--offset", "1", "--json"]
    listed = kiln_cli(sqlite_workspace, cache, *args)
    assert listed.returncode == 0, listed.stderr
    assert [(r["id"], r["status"]) for r in json.loads(listed.stdout)] == [
        ("r06", "Failed"),
        ("r03", "Failed"),
    ]
    bad = kiln_cli(sqlite_workspace, cache, "run", "list", "--status", "Done")
    assert bad.returncode == 2 and bad.stdout == ""
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "`status`: 'Done' is not a run status; use one of Queued, Preparing, Running, "
            "Finalizing, Completed, Failed, Canceled"
        )
    )


def test_the_sdk_lists_an_experiments_runs_by_status(sqlite_workspace: Workspace) -> None:
    from kiln.sdk.runs import Experiment, Run

    _seed(sqlite_workspace)
    experiment = Experiment(sqlite_workspace, "e0")
    assert [r.id for r in Run.list(experiment, status="Failed")] == ["r06", "r00"]
    assert [r.id for r in Run.list(experiment)] == [f"r{i:02d}" for i in (10, 8, 6, 4, 2, 0)]


def test_an_experiments_get_runs_reads_every_page(
    sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiln.sdk import runs as sdk_runs

    _seed(sqlite_workspace, 130)  # more than list_runs' default limit of 50
    monkeypatch.setattr(sdk_runs, "_LIST_PAGE", 7)  # several pages, one of them partial
    found = [r.id for r in sdk_runs.Experiment(sqlite_workspace, "e1").get_runs()]
    assert found == [f"r{i:02d}" for i in range(129, 0, -2)]
