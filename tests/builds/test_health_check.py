"""The health check proves an environment is whole without importing anything: each way of
breaking a real, built venv (a file of a package deleted, its RECORD gone, its metadata gone or
nameless, a dependency removed, a package nobody locked) is named, and a whole one passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kiln.builders import venv
from kiln.builders.earlycheck import EarlyCheck
from kiln.builders.venvcheck import locked_versions
from kiln.buildinfo import logged_build
from kiln.builds import Built, ensure_built
from kiln.cache import Cache
from kiln.environment.definition import EnvironmentDefinition
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, definition, register


@pytest.fixture(name="built")
def built_demo(sqlite_workspace: Workspace, package_index: PackageIndex) -> Built:
    package_index.publish("tiny-dep", "1.0")
    package_index.publish("demo", "1.0", requires=["tiny-dep"], data={"extra.py": b"X = 1\n"})
    return ensure_built(
        sqlite_workspace, register(sqlite_workspace, definition("d", ["demo"], package_index.url))
    )


def _copy(built: Built, tmp_path: Path) -> tuple[Path, Path, EnvironmentDefinition]:
    """A copy of the built venv to break (relocatable: it works anywhere), and its site."""
    copy = tmp_path / "copy"
    shutil.copytree(built.path, copy, symlinks=True)
    site = next(copy.glob("lib/python3*/site-packages"))
    return copy, site, built.record.definition


def test_a_whole_environment_passes(built: Built) -> None:
    assert venv.health_check(built.path, built.record.definition) is None


def test_a_deleted_file_of_a_package_is_named(built: Built, tmp_path: Path) -> None:
    copy, site, definition_ = _copy(built, tmp_path)
    (site / "demo" / "extra.py").unlink()

    assert venv.health_check(copy, definition_) == "demo 1.0 lacks 1 of its files: demo/extra.py"


def test_a_deleted_folder_names_its_files_and_a_dangling_link_is_still_a_file(
    built: Built, tmp_path: Path
) -> None:
    """The check lists each folder once: what it finds is what ``os.path.lexists`` finds."""
    copy, site, definition_ = _copy(built, tmp_path)
    (site / "demo" / "extra.py").unlink()
    (site / "demo" / "extra.py").symlink_to(tmp_path / "nowhere.py")
    assert venv.health_check(copy, definition_) is None

    shutil.rmtree(site / "demo")
    reason = venv.health_check(copy, definition_)
    assert reason is not None and reason.startswith("demo 1.0 lacks 2 of its files: demo/")


def test_a_deleted_record_is_named(built: Built, tmp_path: Path) -> None:
    copy, site, definition_ = _copy(built, tmp_path)
    (site / "demo-1.0.dist-info" / "RECORD").unlink()

    assert venv.health_check(copy, definition_) == "demo 1.0 has no RECORD"


def test_missing_or_nameless_metadata_is_named(built: Built, tmp_path: Path) -> None:
    copy, site, definition_ = _copy(built, tmp_path)
    (site / "demo-1.0.dist-info" / "METADATA").unlink()
    (site / "tiny_dep-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\n\nName: x\n")

    reason = venv.health_check(copy, definition_)

    assert reason is not None
    problems = reason.split("; ")
    assert problems[0].startswith(f"unreadable metadata in {site / 'demo-1.0.dist-info'}: ")
    assert problems[1] == f"metadata without a name or version in {site / 'tiny_dep-1.0.dist-info'}"
    assert "demo 1.0 is locked but not installed" in problems


def test_a_missing_dependency_is_named_by_the_lock_and_by_uv_pip_check(
    built: Built, tmp_path: Path
) -> None:
    copy, site, definition_ = _copy(built, tmp_path)
    shutil.rmtree(site / "tiny_dep")
    shutil.rmtree(site / "tiny_dep-1.0.dist-info")

    reason = venv.health_check(copy, definition_)

    assert reason is not None
    problems = reason.split("; ")
    assert problems[0] == "tiny-dep 1.0 is locked but not installed"
    assert problems[1].startswith("`uv pip check`: The package `demo` requires `tiny-dep`")


def test_a_package_nobody_locked_is_named(built: Built, tmp_path: Path) -> None:
    copy, site, definition_ = _copy(built, tmp_path)
    stray = site / "stray-2.0.dist-info"
    stray.mkdir()
    (stray / "METADATA").write_text("Metadata-Version: 2.1\nName: stray\nVersion: 2.0\n")
    (stray / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    (stray / "RECORD").write_text("stray-2.0.dist-info/METADATA,,\nstray-2.0.dist-info/RECORD,,\n")

    assert venv.health_check(copy, definition_) == "installed but not locked: stray"


def test_a_build_runs_none_of_the_packages_code(
    sqlite_workspace: Workspace, package_index: PackageIndex, tmp_path: Path
) -> None:
    witness = tmp_path / "imported"
    package_index.publish("noisy", "1.0", body=f"open({str(witness)!r}, 'w').write('yes')")
    data = definition("n", ["noisy"], package_index.url)

    built = ensure_built(sqlite_workspace, register(sqlite_workspace, data))

    assert built.built_now and not witness.exists()
    assert venv.health_check(built.path, built.record.definition) is None
    assert not witness.exists()


SKIPPED = "(`uv pip check` passed on an earlier build of this lock: not run again)"


def test_uv_pip_check_runs_once_per_lock(
    built: Built, sqlite_workspace: Workspace, cache_dir: Path
) -> None:
    first = logged_build(sqlite_workspace, built.record).log
    assert first is not None and SKIPPED not in first.read_text(encoding="utf-8")
    assert Cache(cache_dir).remove(built.key)

    again = ensure_built(sqlite_workspace, built.record)

    assert again.built_now and again.lock.lock_digest == built.lock.lock_digest
    second = logged_build(sqlite_workspace, built.record).log
    assert second is not None and SKIPPED in second.read_text(encoding="utf-8")


def _early(copy: Path) -> EarlyCheck:
    early = EarlyCheck()
    locked = locked_versions(copy)
    assert locked is not None
    early.start(copy, list(locked))
    return early


def test_the_check_started_before_the_install_sees_what_was_installed_after(
    built: Built, tmp_path: Path
) -> None:
    """The early interpreter scans only when told: a file deleted after it started is named."""
    copy, site, _ = _copy(built, tmp_path)
    early = _early(copy)
    (site / "demo" / "extra.py").unlink()

    reason = venv.run_health_check(copy, [], write_bytecode=False, exact=True, early=early)
    assert reason == "demo 1.0 lacks 1 of its files: demo/extra.py"
    assert early.process is None  # its answer was taken


@pytest.mark.parametrize("added", ["zz-added.pth", "sitecustomize.py"])
def test_a_start_up_file_added_after_the_early_start_means_a_new_interpreter(
    built: Built, tmp_path: Path, added: str
) -> None:
    """site reads .pth files and sitecustomize when the interpreter starts: one that appears
    later would be missed, so the waiting interpreter steps aside and a new one checks."""
    copy, site, _ = _copy(built, tmp_path)
    early = _early(copy)
    (site / added).write_text("import sys; sys.exit('broken start-up file')\n")

    assert early.result(timeout=60) is None
    reason = venv.run_health_check(copy, [], write_bytecode=False, exact=True)
    assert reason is not None and "broken start-up file" in reason
