"""A ``kiln env build`` of a plain pip definition on the embedded registry takes the
standard-library path (kiln.fastbuild), from a stored lock or resolving the first one: it must
resolve, store, install, mark, record and point exactly as the full path does, import neither
SQLAlchemy nor pydantic, resolve and build once when two processes ask at once, take no build
lease (as the full path takes none for a stored lock's venv), record and remember a failed
resolution as the full path does, and step aside for everything else."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kiln import catalog
from kiln.builds import ensure_built
from kiln.cache import MARKER, Cache, materialization_key
from kiln.cli.main import build_parser
from kiln.environment.validation import validate_definition
from kiln.errors import KilnError
from kiln.fastplan import plan_warm
from kiln.registry.engine import write_transaction
from kiln.registry.lease_queries import Holder, LeaseKey, insert_lease
from kiln.registry.schema import build_leases, locks
from kiln.workspace import Workspace
from kilntesting.builds import (
    PackageIndex,
    build_rows,
    definition,
    installed_versions,
    make_wheel,
    register,
    wait_for_bytecode,
)
from kilntesting.cli import IMPORT_PROBE

# What differs between two builds of the same lock: when, how long, where, and which log.
VARYING_ROW = ("id", "log_digest", "started_at", "duration_ms")
VARYING_MARKER = ("created_at", "seconds")


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace.create(tmp_path / "project")
    yield workspace
    workspace.close()


@pytest.fixture
def locked(
    ws: Workspace, package_index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """``demo`` registered and built once in a cache of its own: its lock is stored. Returns
    its build hash."""
    package_index.publish("tiny-dep", "1.0")
    package_index.publish("demo", "1.0", requires=["tiny-dep"])
    record = register(ws, definition("demo", ["demo==1.0"], package_index.url))
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "resolving"))
    ensure_built(ws, record)
    wait_for_bytecode(tmp_path / "resolving")
    return record.build_hash


def _args(ws: Workspace, *argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["-w", str(ws.path), "env", "build", "demo", *argv])


def _build(
    ws: Workspace, cache: Path, capsys: pytest.CaptureFixture[str], *, fast: bool
) -> dict[str, Any]:
    """One path of ``kiln env build demo --json`` in this process, into ``cache``."""
    os.environ["KILN_CACHE_DIR"] = str(cache)  # restored by the autouse cache_dir's monkeypatch
    args = _args(ws, "--json")
    code = args.fast(args) if fast else args.handler(args)
    assert code == 0, "the fast path stepped aside" if code is None else code
    wait_for_bytecode(cache)
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def _without(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def _marker(result: dict[str, Any]) -> dict[str, Any]:
    return json.loads((Path(result["path"]) / MARKER).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _pointer(cache: Path, build_hash: str) -> dict[str, Any]:
    text = (cache / "by-build" / f"{build_hash}.json").read_text(encoding="utf-8")
    return json.loads(text.replace(str(cache), "CACHE"))  # type: ignore[no-any-return]


def test_a_warm_build_installs_marks_records_and_points_as_the_full_path_does(
    ws: Workspace, locked: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = _build(ws, tmp_path / "full", capsys, fast=False)
    fast = _build(ws, tmp_path / "fast", capsys, fast=True)

    assert fast["built"] and full["built"]
    assert Path(fast["path"]).name == Path(full["path"]).name  # the same materialization key
    keep = ("seconds", "path", "interpreter")
    assert _without(fast, keep) == _without(full, keep)
    assert installed_versions(Path(fast["interpreter"])) == {"demo": "1.0", "tiny-dep": "1.0"}
    assert installed_versions(Path(fast["interpreter"])) == installed_versions(
        Path(full["interpreter"])
    )
    assert _without(_marker(fast), VARYING_MARKER) == _without(_marker(full), VARYING_MARKER)
    assert _pointer(tmp_path / "fast", locked) == _pointer(tmp_path / "full", locked)
    resolving, by_full, by_fast = build_rows(ws, locked)
    assert _without(by_fast, VARYING_ROW) == _without(by_full, VARYING_ROW)
    assert by_fast["status"] == "succeeded" and by_fast["started_at"] >= resolving["started_at"]
    log = ws.artifacts.lookup(by_fast["log_digest"])
    assert log is not None
    text = log.read_text(encoding="utf-8")
    assert "uv pip check` passed on an earlier build" in text and text.endswith("succeeded\n")
    # Built already: both paths reuse it, and record nothing more.
    again = _build(ws, tmp_path / "fast", capsys, fast=True)
    assert not again["built"] and again["path"] == fast["path"]
    assert len(build_rows(ws, locked)) == 3


def _probe(ws: Workspace, cache: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``kiln env build demo --json`` in a fresh interpreter: its result, and the heavy modules
    it imported."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, "-w", str(ws.path), "env", "build", "demo", "--json"],
        env={**os.environ, "KILN_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        check=True,
    )
    facts = json.loads(result.stderr.rstrip("\n").rpartition("\n")[2])
    return json.loads(result.stdout), facts


def test_a_warm_build_imports_neither_sqlalchemy_nor_pydantic(
    ws: Workspace, locked: str, tmp_path: Path
) -> None:
    built, facts = _probe(ws, tmp_path / "fresh")
    assert facts == {"code": 0, "heavy": []} and built["built"]
    wait_for_bytecode(tmp_path / "fresh")
    reused, facts = _probe(ws, tmp_path / "fresh")
    assert facts == {"code": 0, "heavy": []} and not reused["built"]


def _two_builds_at_once(ws: Workspace, cache: Path) -> list[subprocess.CompletedProcess[str]]:
    """``kiln env build demo --json`` in two processes started together, sharing ``cache``."""
    env = {**os.environ, "KILN_CACHE_DIR": str(cache), "KILN_WORKSPACE": str(ws.path)}
    command = [sys.executable, "-m", "kiln", "env", "build", "demo", "--json"]
    processes = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    finished = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        finished.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return finished


def test_two_warm_builds_of_one_environment_at_once_build_it_once(
    ws: Workspace, locked: str, tmp_path: Path, package_index: PackageIndex
) -> None:
    package_index.delay = 0.5  # downloads into the fresh cache are slow: the builds overlap
    cache = tmp_path / "shared-cache"
    results = []
    for done in _two_builds_at_once(ws, cache):
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout))
    wait_for_bytecode(cache)

    assert sorted(r["built"] for r in results) == [False, True]
    assert results[0]["path"] == results[1]["path"]
    assert [r["status"] for r in build_rows(ws, locked)] == ["succeeded", "succeeded"]


def _lease(ws: Workspace, key: LeaseKey, host: str, pid: int) -> None:
    with write_transaction(ws.engine) as connection:
        holder = Holder(f"held-by-{pid}", host, pid, "demo:1")
        assert insert_lease(connection, key=key, holder=holder, now=time.time(), seconds=600)


def _leases(ws: Workspace) -> list[dict[str, Any]]:
    with ws.engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(build_leases))]


@pytest.mark.parametrize("holder", ["another machine, alive", "this host, dead"])
def test_a_warm_build_takes_no_lease_as_the_full_path_takes_none(
    ws: Workspace, locked: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], holder: str
) -> None:
    """A stored lock's venv is made on this machine from that lock: no other machine makes
    what it would reuse, so neither path waits for a lease (or takes over a stale one)."""
    platform = build_rows(ws, locked)[0]["platform"]
    host, pid = (
        ("kiln-other-machine", 1)
        if holder.startswith("another")
        else (
            socket.gethostname(),
            _dead_pid(),
        )
    )
    _lease(ws, LeaseKey(locked, platform, "venv"), host, pid)
    before = _leases(ws)

    assert _build(ws, tmp_path / "fast", capsys, fast=True)["built"]
    assert _leases(ws) == before
    assert _build(ws, tmp_path / "full", capsys, fast=False)["built"]
    assert _leases(ws) == before


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def published(package_index: PackageIndex) -> PackageIndex:
    package_index.hashed_pages = True  # as PyPI's: uv's cache can resolve from its pages alone
    package_index.publish("tiny-dep", "1.0")
    package_index.publish("demo", "1.0", requires=["tiny-dep"])
    return package_index


def _locks(ws: Workspace, build_hash: str) -> list[dict[str, Any]]:
    query = select(locks).where(locks.c.build_hash == build_hash).order_by(locks.c.id)
    with ws.engine.connect() as connection:
        return [_without(dict(r._mapping), ("id", "created_at")) for r in connection.execute(query)]


def test_a_first_build_resolves_stores_and_records_as_the_full_path_does(
    tmp_path: Path, published: PackageIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    spaces = {path: Workspace.create(tmp_path / path) for path in ("fast", "full")}
    try:
        hashes = {
            register(space, definition("demo", ["demo==1.0"], published.url)).build_hash
            for space in spaces.values()
        }
        (build_hash,) = hashes
        fast = _build(spaces["fast"], tmp_path / "fast-cache", capsys, fast=True)
        full = _build(spaces["full"], tmp_path / "full-cache", capsys, fast=False)

        keep = ("seconds", "path", "interpreter")
        assert _without(fast, keep) == _without(full, keep)
        assert fast["built"] and fast["lock_generation"] == 1 and fast["packages"] == 2
        assert installed_versions(Path(fast["interpreter"])) == {"demo": "1.0", "tiny-dep": "1.0"}
        assert _locks(spaces["fast"], build_hash) == _locks(spaces["full"], build_hash)
        assert len(_locks(spaces["fast"], build_hash)) == 1
        assert _without(_marker(fast), VARYING_MARKER) == _without(_marker(full), VARYING_MARKER)
        pointers = [_pointer(tmp_path / f"{path}-cache", build_hash) for path in spaces]
        assert pointers[0] == pointers[1]
        (by_fast,), (by_full,) = (build_rows(space, build_hash) for space in spaces.values())
        assert _without(by_fast, VARYING_ROW) == _without(by_full, VARYING_ROW)
        log = spaces["fast"].artifacts.lookup(by_fast["log_digest"])
        assert log is not None
        text = log.read_text(encoding="utf-8")
        assert text.startswith("==> resolve\n$ uv pip compile") and text.endswith("succeeded\n")
    finally:
        for space in spaces.values():
            space.close()


def test_a_first_build_imports_neither_sqlalchemy_nor_pydantic(
    ws: Workspace, published: PackageIndex, tmp_path: Path
) -> None:
    record = register(ws, definition("demo", ["demo==1.0"], published.url))
    built, facts = _probe(ws, tmp_path / "fresh")
    assert facts == {"code": 0, "heavy": []} and built["built"]
    assert [row["generation"] for row in _locks(ws, record.build_hash)] == [1]


def test_two_first_builds_at_once_resolve_once_and_build_once(
    ws: Workspace, published: PackageIndex, tmp_path: Path
) -> None:
    record = register(ws, definition("demo", ["demo==1.0"], published.url))
    published.delay = 0.5  # the index answers slowly: the second asks while the first resolves
    cache = tmp_path / "shared-cache"
    results = []
    for done in _two_builds_at_once(ws, cache):
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout))
    wait_for_bytecode(cache)

    assert sorted(r["built"] for r in results) == [False, True]
    assert len({r["lock_digest"] for r in results}) == 1
    assert len(_locks(ws, record.build_hash)) == 1
    assert [r["status"] for r in build_rows(ws, record.build_hash)] == ["succeeded"]


def test_a_failed_resolution_is_recorded_and_remembered_as_the_full_path_does(
    ws: Workspace, published: PackageIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = register(ws, definition("demo", ["demo==9.9"], published.url))
    os.environ["KILN_CACHE_DIR"] = str(tmp_path / "cache")  # restored by cache_dir's monkeypatch
    args = _args(ws)
    with pytest.raises(KilnError, match=re.escape("demo==9.9")) as failed:
        args.fast(args)
    (row,) = build_rows(ws, record.build_hash)
    assert (row["status"], row["lock_digest"], row["builder"]) == ("failed", None, "venv")
    assert row["error"] == str(failed.value)
    assert _locks(ws, record.build_hash) == []
    # Remembered: the full path says when it failed, without trying (or recording) again;
    # --retry resolves now, on this path too.
    assert args.fast(args) is None
    with pytest.raises(KilnError, match=r"resolving failed .* ago"):
        args.handler(args)
    assert len(build_rows(ws, record.build_hash)) == 1
    retried = _args(ws, "--retry")
    with pytest.raises(KilnError, match=re.escape("demo==9.9")):
        retried.fast(retried)
    assert [r["status"] for r in build_rows(ws, record.build_hash)] == ["failed", "failed"]


def test_a_definition_with_a_local_wheel_takes_the_full_path(
    ws: Workspace, published: PackageIndex, tmp_path: Path
) -> None:
    """The full path stages local files from the artifact store before it resolves."""
    wheel = make_wheel(tmp_path / "made", "local", "1.0")
    folder = tmp_path / "source"
    (folder / "wheels").mkdir(parents=True)
    shutil.copyfile(wheel, folder / "wheels" / wheel.name)
    data = definition("demo", [f"./wheels/{wheel.name}"], published.url)
    catalog.register(ws, validate_definition(data), source_dir=folder)
    assert plan_warm(ws, "demo", retry=False) is None


def test_a_registry_at_another_schema_revision_takes_the_full_path(
    ws: Workspace, locked: str
) -> None:
    database = ws.registry_file
    with sqlite3.connect(database) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        connection.execute("UPDATE alembic_version SET version_num = 'not-this-one'")
    try:
        assert plan_warm(ws, "demo", retry=False) is None
    finally:
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    plan = plan_warm(ws, "demo", retry=False)
    assert plan is not None
    plan.connection.close()


def test_an_edited_lock_takes_the_full_path_which_refuses_it(ws: Workspace, locked: str) -> None:
    with sqlite3.connect(ws.registry_file) as connection:
        connection.execute("UPDATE locks SET lock_text = lock_text || '# edited\n'")
    assert plan_warm(ws, "demo", retry=False) is None


def test_a_recent_failure_takes_the_full_path_unless_retried(ws: Workspace, locked: str) -> None:
    """The full path says when and why it failed; ``--retry`` builds now, here too."""
    row = build_rows(ws, locked)[0]
    key = materialization_key("venv", locked, row["lock_digest"], row["platform"])
    Cache(ws.cache_root).remember_failure(key, "it broke", None)
    assert plan_warm(ws, "demo", retry=False) is None
    plan = plan_warm(ws, "demo", retry=True)
    assert plan is not None
    plan.connection.close()


def test_options_and_definitions_the_fast_path_does_not_build_take_the_full_path(
    ws: Workspace, locked: str, package_index: PackageIndex
) -> None:
    for flag in ("--refresh", "--refresh-base"):
        args = _args(ws, flag)
        assert args.fast(args) is None, flag
    url = package_index.url
    token = url.replace("http://", "http://kiln:${INDEX_TOKEN}@")  # a secret: the full path
    secret = definition("private", ["demo==1.0"], token)
    register(ws, secret)
    assert plan_warm(ws, "private", retry=False) is None
    for reference in ("Kiln-minimal-py311", "demo@latest", "demo:1:2", "missing"):
        assert plan_warm(ws, reference, retry=False) is None, reference


def test_a_server_workspace_takes_the_full_path() -> None:
    assert plan_warm(Workspace("http://127.0.0.1:9"), "demo", retry=False) is None


def test_a_postgresql_workspace_takes_the_full_path(tmp_path: Path, postgres_url: str) -> None:
    shared = Workspace.create(tmp_path / "shared", database_url=postgres_url)
    try:
        args = build_parser().parse_args(["-w", str(shared.path), "env", "build", "demo"])
        assert args.fast(args) is None
    finally:
        shared.close()


def _warm_cache(tmp_path: Path, index: PackageIndex) -> Path:
    """A Kiln cache whose uv cache holds the index pages and files of ``demo==1.0``: that
    environment built there, from a workspace of its own."""
    cache = tmp_path / "warm-cache"
    warming = Workspace.create(tmp_path / "warming")
    try:
        register(warming, definition("demo", ["demo==1.0"], index.url))
        env = {**os.environ, "KILN_CACHE_DIR": str(cache)}
        command = [sys.executable, "-m", "kiln", "-w", str(warming.path), "env", "build", "demo"]
        subprocess.run(command, env=env, capture_output=True, check=True)
        wait_for_bytecode(cache)
    finally:
        warming.close()
    return cache


def _log(ws: Workspace, row: dict[str, Any]) -> str:
    log = ws.artifacts.lookup(row["log_digest"])
    assert log is not None
    return log.read_text(encoding="utf-8")


def _environments(cache: Path) -> int:
    return sum(1 for folder in (cache / "envs").iterdir() if folder.is_dir())


def test_a_first_build_installs_the_cached_guess_when_the_index_agrees(
    ws: Workspace, published: PackageIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = _warm_cache(tmp_path, published)
    record = register(ws, definition("demo", ["demo"], published.url))  # another build hash
    built = _build(ws, cache, capsys, fast=True)

    assert built["built"] and built["lock_generation"] == 1
    assert installed_versions(Path(built["interpreter"])) == {"demo": "1.0", "tiny-dep": "1.0"}
    (lock,) = _locks(ws, record.build_hash)
    assert lock["lock_digest"] == built["lock_digest"]
    (row,) = build_rows(ws, record.build_hash)
    assert (row["status"], row["lock_digest"]) == ("succeeded", built["lock_digest"])
    text = _log(ws, row)
    assert "while uv asks the index" in text and "(the index gives the same lock)" in text
    compiles = [line for line in text.splitlines() if line.startswith("$ uv pip compile")]
    assert len(compiles) == 2 and compiles[0].endswith(" --offline")  # the guess, then the index
    assert _marker(built)["lock_digest"] == built["lock_digest"]
    assert _environments(cache) == 2


def test_a_guess_the_index_contradicts_is_thrown_away_for_the_index_s_lock(
    ws: Workspace, published: PackageIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = _warm_cache(tmp_path, published)
    published.publish("demo", "2.0", requires=["tiny-dep"])  # uv's cached pages predate it
    record = register(ws, definition("demo", ["demo"], published.url))
    built = _build(ws, cache, capsys, fast=True)

    assert installed_versions(Path(built["interpreter"]))["demo"] == "2.0"
    (lock,) = _locks(ws, record.build_hash)
    assert {p["name"]: p["version"] for p in json.loads(lock["packages"])}["demo"] == "2.0"
    (row,) = build_rows(ws, record.build_hash)
    assert row["status"] == "succeeded" and row["lock_digest"] == lock["lock_digest"]
    assert "(the index gives another lock: building that one instead)" in _log(ws, row)
    assert _environments(cache) == 2  # the guess's folder was removed, not kept beside it


def test_a_resolution_that_fails_fails_the_build_whatever_the_guess(
    ws: Workspace, published: PackageIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = _warm_cache(tmp_path, published)
    record = register(ws, definition("demo", ["demo"], published.url))
    published.credentials = ("kiln", "not-given")  # the index now refuses: uv's cache does not
    os.environ["KILN_CACHE_DIR"] = str(cache)  # restored by cache_dir's monkeypatch
    args = _args(ws)
    with pytest.raises(KilnError) as failed:
        args.fast(args)

    (row,) = build_rows(ws, record.build_hash)
    assert (row["status"], row["lock_digest"], row["error"]) == ("failed", None, str(failed.value))
    assert "401" in str(failed.value) or "nauthorized" in str(failed.value)
    assert _locks(ws, record.build_hash) == []
    assert _environments(cache) == 1  # nothing of the guess is left
    assert plan_warm(ws, "demo", retry=False) is None  # remembered: the full path says when
    published.credentials = None
    retried = _args(ws, "--retry", "--json")
    assert retried.fast(retried) == 0
    assert json.loads(capsys.readouterr().out)["built"]


def test_when_the_guess_and_the_resolution_both_fail_the_resolution_s_failure_is_recorded(
    ws: Workspace, published: PackageIndex, tmp_path: Path
) -> None:
    cache = _warm_cache(tmp_path, published)
    data = definition("demo", ["demo"], published.url, check_imports=["not_a_module"])
    record = register(ws, data)  # the guess installs, then its import check fails
    published.credentials = ("kiln", "not-given")  # and the index refuses
    os.environ["KILN_CACHE_DIR"] = str(cache)  # restored by cache_dir's monkeypatch
    args = _args(ws)
    with pytest.raises(KilnError) as failed:
        args.fast(args)

    assert "not_a_module" not in str(failed.value)
    (row,) = build_rows(ws, record.build_hash)
    assert (row["status"], row["lock_digest"], row["error"]) == ("failed", None, str(failed.value))
    assert _locks(ws, record.build_hash) == [] and _environments(cache) == 1
    assert plan_warm(ws, "demo", retry=False) is None  # remembered as a failed resolution


def test_a_build_that_waited_for_a_failed_resolution_says_so_without_trying_again(
    ws: Workspace, published: PackageIndex, tmp_path: Path
) -> None:
    record = register(ws, definition("demo", ["demo==9.9"], published.url))
    published.delay = 0.5  # the first resolution is slow: the second build waits for it
    errors = []
    for done in _two_builds_at_once(ws, tmp_path / "cache"):
        assert done.returncode != 0
        errors.append(done.stderr)

    assert sum("resolving failed" in err and "s ago" in err for err in errors) == 1
    assert [r["status"] for r in build_rows(ws, record.build_hash)] == ["failed"]


def test_a_relative_cache_folder_is_taken_from_where_kiln_was_started(
    ws: Workspace, published: PackageIndex, tmp_path: Path
) -> None:
    # uv runs with other working folders: a relative KILN_CACHE_DIR handed on as is failed
    # every build ("No virtual environment ... found for path `cache/tmp/...`").
    register(ws, definition("demo", ["demo==1.0"], published.url))
    env = {**os.environ, "KILN_CACHE_DIR": "relative-cache", "KILN_WORKSPACE": str(ws.path)}
    kiln = [sys.executable, "-m", "kiln"]
    built = subprocess.run(
        [*kiln, "env", "build", "demo", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    path = Path(json.loads(built.stdout)["path"])
    assert path.is_absolute() and path.is_relative_to(tmp_path / "relative-cache")
    wait_for_bytecode(tmp_path / "relative-cache")
    ran = subprocess.run(
        [*kiln, "env", "exec", "demo", "--", "python", "-c", "import demo, sys; print(sys.prefix)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0 and ran.stdout.strip() == str(path), ran.stderr
