"""Builds deduplicated across machines by the registry's build lease. Each `kiln env build`
process has a cache folder of its own, as a separate machine would, and they share one
PostgreSQL registry: the second waits for the first and then installs the lock it stored; a
builder killed with SIGKILL holds the others up only until its lease expires; a failed build
frees its lease at once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kiln.buildleases import SECONDS_VARIABLE, lease_seconds
from kiln.builds import ensure_built
from kiln.errors import KilnError, WorkspaceError
from kiln.registry.engine import write_transaction
from kiln.registry.lease_queries import Holder, LeaseKey, insert_lease
from kiln.registry.schema import build_leases
from kiln.workspace import Workspace
from kilntesting.builds import (
    PackageIndex,
    build_rows,
    definition,
    lock_generations,
    register,
    says_waiting,
    wait_for,
)

OTHER_HOST = "kiln-other-machine"


@pytest.fixture
def shared(tmp_path: Path, postgres_url: str) -> Iterator[Workspace]:
    """A workspace on PostgreSQL, as machines of a team share one."""
    ws = Workspace.create(tmp_path / "project", database_url=postgres_url)
    yield ws
    ws.close()


def _leases(workspace: Workspace) -> list[dict[str, Any]]:
    with workspace.engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(build_leases))]


def _build(
    workspace: Workspace, machine: str, *, prefix: tuple[str, ...] = (), **env: str
) -> subprocess.Popen[str]:
    """`kiln env build demo --json` on a "machine": a cache folder of its own."""
    cache = workspace.path.parent / f"machine-{machine}"
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "kiln", "env", "build", "demo", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "KILN_CACHE_DIR": str(cache),
            "KILN_WORKSPACE": str(workspace.path),
            **env,
        },
        start_new_session=True,  # its own process group: a kill takes its uv children too
    )


def _finished(process: subprocess.Popen[str]) -> tuple[dict[str, Any], str]:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    return json.loads(out), err


def _log(workspace: Workspace, row: dict[str, Any]) -> str:
    stored = workspace.artifacts.lookup(row["log_digest"])
    assert stored is not None
    return stored.read_text(encoding="utf-8")


def test_two_machines_building_at_once_resolve_once_and_the_second_installs_that_lock(
    shared: Workspace, package_index: PackageIndex
) -> None:
    package_index.publish("tiny-dep", "1.0")
    package_index.publish("demo", "1.0", requires=["tiny-dep"])
    record = register(shared, definition("demo", ["demo"], package_index.url))
    package_index.delay = (
        600.0  # held until the second waits (a loaded machine may take a minute to get there)
    )

    first = _build(shared, "a", UV_HTTP_TIMEOUT="900")  # uv waits out the held index
    wait_for(lambda: _leases(shared), "the first build to take its lease")
    second = _build(shared, "b")
    wait_for(
        lambda: says_waiting(shared.path.parent / "machine-b"),
        "the second build to wait for the first",
        timeout=300,
    )
    package_index.delay = 0.0
    (built_a, _), (built_b, waited) = _finished(first), _finished(second)

    assert f"waiting for {socket.gethostname()} pid {first.pid}, which is building demo:1" in waited
    assert built_a["built"] and built_b["built"]  # each machine has its own copy...
    assert built_a["lock_digest"] == built_b["lock_digest"]  # ...of the one lock
    assert lock_generations(shared, record.build_hash) == [1]
    rows = build_rows(shared, record.build_hash)
    assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
    first_log, second_log = (_log(shared, r) for r in rows)
    assert "==> resolve" in first_log and "waiting for" not in first_log
    assert "==> resolve" not in second_log  # no resolution of its own: it installed the lock
    assert f"==> waiting for {socket.gethostname()} pid {first.pid}" in second_log
    assert {r["created_by"] for r in rows} == {f"local:{_user()}"}
    assert _leases(shared) == []


def _user() -> str:
    import getpass

    return getpass.getuser()


def test_a_builder_killed_midway_holds_others_up_only_until_its_lease_expires(
    shared: Workspace, package_index: PackageIndex
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the first builder a host name of its own (unshare)")
    package_index.publish("demo", "1.0")
    record = register(shared, definition("demo", ["demo"], package_index.url))
    package_index.delay = 30.0  # the first builder hangs in its resolution
    # Another host name, in a UTS namespace of its own: the second builder cannot tell by
    # the process id that the first one died, as on another machine, and must await expiry.
    rename = ("unshare", "--uts", "sh", "-c", f'hostname {OTHER_HOST} && exec "$0" "$@"')
    first = _build(shared, "a", prefix=rename, **{SECONDS_VARIABLE: "2"})
    wait_for(lambda: any(r["host"] == OTHER_HOST for r in _leases(shared)), "the first lease")
    second = _build(shared, "b", **{SECONDS_VARIABLE: "2"})
    wait_for(
        lambda: says_waiting(shared.path.parent / "machine-b"),
        "the second build to wait for the first",
    )
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    package_index.delay = 0.0
    built, waited = _finished(second)

    assert f"waiting for {OTHER_HOST} pid {first.pid}, which is building demo:1" in waited
    assert built["built"]
    assert lock_generations(shared, record.build_hash) == [1]
    (row,) = build_rows(shared, record.build_hash)  # the killed one recorded nothing
    assert row["status"] == "succeeded"
    assert "==> resolve" in _log(shared, row)  # the dead one stored no lock: it resolved
    assert _leases(shared) == []


class Messages:
    def __init__(self) -> None:
        self.said: list[str] = []

    def phase(self, name: str) -> None:
        pass

    def detail(self, text: str) -> None:
        pass

    def message(self, text: str) -> None:
        self.said.append(text)


def test_a_failed_build_releases_its_lease_so_a_retry_does_not_wait(
    workspace: Workspace, package_index: PackageIndex
) -> None:
    record = register(workspace, definition("demo", ["demo"], package_index.url))
    with pytest.raises(KilnError):
        ensure_built(workspace, record)  # demo is not published yet: the resolution fails
    assert _leases(workspace) == []

    package_index.publish("demo", "1.0")
    messages = Messages()
    started = time.monotonic()
    built = ensure_built(workspace, record, retry=True, reporter=messages)

    assert built.built_now
    assert not [m for m in messages.said if "waiting" in m]
    assert time.monotonic() - started < 30
    assert _leases(workspace) == []


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(
    workspace: Workspace, package_index: PackageIndex
) -> None:
    package_index.publish("demo", "1.0")
    record = register(workspace, definition("demo", ["demo"], package_index.url))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    first = ensure_built(workspace, record)  # to learn the platform and the builder
    key = LeaseKey(record.build_hash, first.target.platform, first.builder)
    holder = Holder("dead", socket.gethostname(), gone.pid, "demo:1")
    with write_transaction(workspace.engine) as connection:  # as a kill -9 leaves it
        assert insert_lease(connection, key=key, holder=holder, now=time.time(), seconds=3600)
    messages = Messages()

    built = ensure_built(workspace, record, refresh=True, reporter=messages)

    assert built.lock.generation == 1  # refreshed: the same resolution, kept
    assert not [m for m in messages.said if "waiting" in m]
    assert _leases(workspace) == []


def test_the_lease_length_comes_from_the_environment_and_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SECONDS_VARIABLE, raising=False)
    assert lease_seconds() == 60.0
    monkeypatch.setenv(SECONDS_VARIABLE, "2.5")
    assert lease_seconds() == 2.5
    for bad in ("soon", "0", "nan"):
        monkeypatch.setenv(SECONDS_VARIABLE, bad)
        with pytest.raises(WorkspaceError, match=f"{SECONDS_VARIABLE}='{bad}' is not a number"):
            lease_seconds()
