"""A Ray target's address never stores or shows a plain-text password (issue 15, case 4):
only a ``${VAR}`` reference is accepted, kept as written and read where the target is used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.compute.registry import checked_address, named_target_kind
from kiln.errors import InvalidRequest
from kiln.runs.store import RunStore
from kiln.runs.targets import list_targets
from kiln.workspace import Workspace
from kilntesting.cli import run_kiln

PASSWORD = "Sw0rdfish-plain"


@pytest.mark.parametrize(
    "address",
    [f"ray://bob:{PASSWORD}@127.0.0.1:8265", f"ray://{PASSWORD}@127.0.0.1:8265"],
)
def test_an_address_with_a_password_is_refused_with_the_reference_fix(address: str) -> None:
    for check in (named_target_kind, checked_address):
        with pytest.raises(InvalidRequest) as caught:
            check(address)
        message = caught.value.message
        assert PASSWORD not in message and "\n" not in message
        assert "plain-text password" in message and "${RAY_PASSWORD}@127.0.0.1:8265" in message


def test_target_add_refuses_a_password_and_stores_nothing(tmp_path: Path) -> None:
    run_kiln("init", str(tmp_path / "ws"))
    cwd = tmp_path / "ws"
    added = run_kiln("target", "add", "t1", f"ray://bob:{PASSWORD}@127.0.0.1:8265", cwd=cwd, check=False)  # fmt: skip
    listed = run_kiln("target", "list", "--json", cwd=cwd)

    assert added.returncode == 2
    assert "ray://bob:${RAY_PASSWORD}@127.0.0.1:8265" in added.stderr
    assert PASSWORD not in added.stdout + added.stderr + listed.stdout
    assert json.loads(listed.stdout) == []


def test_a_reference_is_stored_as_written(tmp_path: Path) -> None:
    run_kiln("init", str(tmp_path / "ws"))
    cwd = tmp_path / "ws"
    address = "ray://bob:${RAY_PASSWORD}@127.0.0.1:8265"
    run_kiln("target", "add", "t1", address, cwd=cwd, env={"RAY_PASSWORD": PASSWORD})
    listed = run_kiln("target", "list", "--json", cwd=cwd, env={"RAY_PASSWORD": PASSWORD})

    assert [t["address"] for t in json.loads(listed.stdout)] == [address]
    assert PASSWORD not in listed.stdout


def test_a_password_stored_before_the_check_is_never_listed(workspace: Workspace) -> None:
    store = RunStore(workspace)
    try:  # the store takes what it is given: as a target added by an older Kiln
        store.add_target("old", "ray", f"ray://bob:{PASSWORD}@127.0.0.1:8265")
    finally:
        store.close()

    assert [t["address"] for t in list_targets(workspace)] == [
        "ray://bob:<redacted>@127.0.0.1:8265"
    ]
