"""Reading about builds never builds: `kiln env show --build`, the latest build log, and the
cache's removal of a build with what its builder made outside it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kiln.buildinfo import NOT_BUILT, build_info, latest_build_log
from kiln.builds import ensure_built
from kiln.cache import MARKER, Cache
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, definition, register
from kilntesting.cli import run_kiln


def _everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_show_build_of_an_unbuilt_environment_reports_it_and_creates_nothing(
    tmp_path: Path, cache_dir: Path, cli_env: dict[str, str]
) -> None:
    project = Path(cli_env["KILN_WORKSPACE"])
    run_kiln("init", str(project), env=cli_env)
    source = tmp_path / "requirements.txt"
    source.write_text("demo==1.0\n")
    run_kiln("env", "register", "--file", str(source), "--name", "unbuilt", env=cli_env)
    before = _everything_under(cache_dir)

    shown = json.loads(run_kiln("env", "show", "unbuilt", "--build", "--json", env=cli_env).stdout)
    assert shown["build"]["state"] == NOT_BUILT
    assert shown["build"]["build_hash"] == shown["build_hash"]
    assert shown["build"]["location"] is None
    printed = run_kiln("env", "show", "unbuilt", "--build", env=cli_env).stdout
    assert "build on this machine:" in printed and NOT_BUILT in printed
    assert _everything_under(cache_dir) == before  # nothing built, nothing created


def test_build_info_and_the_latest_log_describe_what_was_built(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    package_index.publish("demo", "1.0")
    record = register(sqlite_workspace, definition("info", ["demo"], package_index.url))
    assert latest_build_log(sqlite_workspace, build_hash=record.build_hash) is None
    assert build_info(sqlite_workspace, record).state == NOT_BUILT

    built = ensure_built(sqlite_workspace, record)
    info = build_info(sqlite_workspace, record)
    assert info.state == "ready"
    assert (info.location, info.interpreter) == (str(built.path), str(built.interpreter))
    assert (info.lock_digest, info.packages) == (built.lock.lock_digest, 1)
    log = latest_build_log(sqlite_workspace, build_hash=record.build_hash)
    assert log is not None and "==> verify" in log.read_text(encoding="utf-8")

    (built.path / "pyvenv.cfg").unlink()
    assert build_info(sqlite_workspace, record).state.startswith("broken: ")


def test_removing_a_build_releases_what_its_builder_made_first(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    folder = cache.path("k1")
    folder.mkdir()
    (folder / MARKER).write_text(json.dumps({"key": "k1"}))
    seen: list[tuple[Path, bool]] = []

    hold = cache.add_reference("k1", os.getpid())
    assert not cache.remove("k1", release=lambda path: seen.append((path, path.exists())))
    assert seen == []  # held: neither the folder nor what the builder made is touched
    hold.unlink()
    assert cache.remove("k1", release=lambda path: seen.append((path, path.exists())))
    assert seen == [(folder, True)] and not folder.exists()
