"""Smaller promises of a build: the progress phases (a download phase only when uv may have to
download: no offline attempt then; never "download" after "install"),
a warm reuse that writes nothing, remembered interpreter discovery, and short secrets."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from kiln.builders import found, interpreters
from kiln.builders.base import BuildError, Target
from kiln.builders.uvtool import MIN_SECRET_LENGTH, redact
from kiln.buildinfo import latest_build_log
from kiln.builds import ensure_built
from kiln.cache import Cache
from kiln.workspace import Workspace
from kilntesting.builds import (
    PackageIndex,
    Recorder,
    built_demo,
    definition,
    register,
    wait_for_bytecode,
)


def test_phases_show_a_download_only_when_uv_downloads(
    sqlite_workspace: Workspace, package_index: PackageIndex, tmp_path: Path
) -> None:
    package_index.publish("tiny-dep", "1.0")
    package_index.publish("demo", "1.0", requires=["tiny-dep"])
    record = register(sqlite_workspace, definition("a", ["demo"], package_index.url))
    ensure_built(sqlite_workspace, record)  # resolves (uv fetches the wheels to read them)

    # Another machine: the lock is known, uv's cache is empty, so the install downloads.
    other = Cache(tmp_path / "other-cache")
    cold = Recorder()
    ensure_built(sqlite_workspace, record, cache=other, reporter=cold)
    assert cold.phases == ["download", "install", "verify"]
    log = latest_build_log(sqlite_workspace, build_hash=record.build_hash)
    assert log is not None
    assert "uv pip sync" in log.read_text() and "--offline" not in log.read_text()

    # The same packages under another build hash: all in uv's cache now, nothing downloaded.
    warm = Recorder()
    ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("b", ["demo", "tiny-dep"], package_index.url)),
        cache=other,
        reporter=warm,
    )
    assert warm.phases == ["resolve", "install", "verify"]


def test_files_gone_from_uvs_cache_are_downloaded_within_the_install_phase(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    record, built = built_demo(sqlite_workspace, package_index)
    wait_for_bytecode(cache_dir)
    shutil.rmtree(Cache(cache_dir).uv_cache)  # as if uv pruned it: Kiln's memory of it stays
    built.interpreter.unlink()  # broken: rebuilt from the stored lock, so no resolve

    again = Recorder()
    ensure_built(sqlite_workspace, record, reporter=again)

    assert again.phases == ["install", "verify"]  # the offline try, then the download in it
    assert "downloading what uv's cache no longer holds" in again.details
    assert "installed demo 1.0 (1 of 1)" in again.details
    log = latest_build_log(sqlite_workspace, build_hash=record.build_hash)
    assert log is not None
    assert "--offline" in log.read_text()
    assert "(not everything is in uv's cache: downloading)" in log.read_text()


def test_a_warm_reuse_creates_no_log_file(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    package_index.publish("demo", "1.0")
    record = register(sqlite_workspace, definition("a", ["demo"], package_index.url))
    ensure_built(sqlite_workspace, record)
    cache = Cache(cache_dir)
    # Nothing can be created in tmp/ now: a reuse that opened a log file there would fail.
    shutil.rmtree(cache_dir / "tmp")
    (cache_dir / "tmp").write_text("not a folder", encoding="utf-8")

    again = ensure_built(sqlite_workspace, record, cache=cache)

    assert not again.built_now


def test_interpreter_discovery_is_remembered_while_the_interpreter_is_unchanged(
    tmp_path: Path, cache_dir: Path
) -> None:
    first = interpreters.find("3.11", cache_dir / "uv")
    assert list((cache_dir / "interpreters").glob("*.json"))
    assert found.recall(cache_dir, "3.11") == first
    assert interpreters.find("3.11", cache_dir / "uv") == first
    assert found.recall(cache_dir, "3.12") is None  # per request

    fake = tmp_path / "python3.11"
    shutil.copyfile(sys.executable, fake)
    target = Target(fake, "3.11.99", "linux-x86_64-cp311")
    found.remember(cache_dir, "3.11", target)
    assert found.recall(cache_dir, "3.11") == target
    with fake.open("ab") as handle:  # upgraded in place: found again
        handle.write(b"\0")
    assert found.recall(cache_dir, "3.11") is None
    found.remember(cache_dir, "3.11", target)
    fake.unlink()  # removed: found again
    assert found.recall(cache_dir, "3.11") is None
    assert interpreters.find("3.11", cache_dir / "uv") == first


def test_kilns_own_interpreter_answers_the_requests_it_satisfies_as_a_probe_would() -> None:
    # Known without uv or a probe: the facts must be the probe's, or builds would key
    # differently depending on which way the interpreter was found.
    major, minor, micro = sys.version_info[:3]
    mine = interpreters.own(f"{major}.{minor}")
    assert mine is not None and mine == interpreters.describe(mine.interpreter)
    if sys.prefix != sys.base_prefix:  # run from a virtualenv: never that venv's python
        assert Path(sys.prefix) not in mine.interpreter.parents
    assert interpreters.own("") == interpreters.own(str(major)) == mine
    assert interpreters.own(f"{major}.{minor}.{micro}") == mine
    for other in (f"{major}.{minor}.{micro + 1}", f"{major}.{minor + 1}", "2", "cpython@3", ">=3"):
        assert interpreters.own(other) is None, other


def test_redaction_leaves_ordinary_text_alone_and_short_secrets_are_refused(
    sqlite_workspace: Workspace, package_index: PackageIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {"KILN_INDEX_TOKEN": "s3cr3t-Token-7f1d9a", "SHORT": "uv"}
    text = "uv pip sync --index-url https://u:s3cr3t-Token-7f1d9a@host/simple"
    assert (
        redact(text, secrets) == "uv pip sync --index-url https://u:${KILN_INDEX_TOKEN}@host/simple"
    )

    url = package_index.url.replace("http://", "http://builder:${KILN_INDEX_TOKEN}@")
    record = register(sqlite_workspace, definition("private", ["demo"], url))
    short = "x" * (MIN_SECRET_LENGTH - 1)
    monkeypatch.setenv("KILN_INDEX_TOKEN", short)
    with pytest.raises(BuildError) as refused:
        ensure_built(sqlite_workspace, record)
    message = str(refused.value)
    assert "${KILN_INDEX_TOKEN}, whose value is shorter than 8 characters" in message
    assert short not in message
