"""Building with local wheels: registered wheels are staged from the workspace's artifact store
into the cache by sha256, and the lock names them relative to itself, so it installs anywhere."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kiln import catalog
from kiln.builds import ensure_built
from kiln.catalog import EnvironmentRecord
from kiln.formats.dispatch import load_path
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, installed_versions, make_wheel

WHEEL = "demo-1.0-py3-none-any.whl"


def register_folder(
    workspace: Workspace, folder: Path, index_url: str, *, body: str = ""
) -> EnvironmentRecord:
    """A kiln.yaml beside ./wheels/demo-1.0-py3-none-any.whl, registered from that folder."""
    wheel = make_wheel(folder / "made", "demo", "1.0", body=body)
    (folder / "wheels").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(wheel, folder / "wheels" / WHEEL)
    (folder / "kiln.yaml").write_text(
        "name: local-demo\n"
        "python:\n"
        '  version: "3.11"\n'
        "  pip:\n"
        f"    index_url: {index_url}\n"
        f"    packages: [./wheels/{WHEEL}]\n",
        encoding="utf-8",
    )
    loaded = load_path(folder / "kiln.yaml", None)
    return catalog.register(workspace, loaded.definition, source_dir=folder).record


def imported_version(python: Path) -> str:
    code = "import demo; print(demo.__version__)"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_registered_local_wheel_builds_from_the_store_and_its_lock_travels(
    workspace: Workspace,
    package_index: PackageIndex,
    tmp_path: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tmp_path / "source"
    record = register_folder(workspace, source, package_index.url)
    (digest,) = record.definition.python.pip.file_digests.values()
    shutil.rmtree(source)  # the build reads the workspace's copy only

    built = ensure_built(workspace, record)

    assert imported_version(built.interpreter) == "1.0"
    assert installed_versions(built.interpreter)["demo"] == "1.0"
    assert (cache_dir / "wheels" / digest / WHEEL).is_file()
    assert f'path = "{digest}/{WHEEL}"' in built.lock.lock_text
    assert str(tmp_path) not in built.lock.lock_text
    # uv's work files beside the staged wheels are gone.
    assert sorted(p.name for p in (cache_dir / "wheels").iterdir()) == [digest]

    # Another machine: a cache root elsewhere installs the very same stored lock.
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "other-machine-cache"))
    again = ensure_built(workspace, record)

    assert again.built_now and again.path != built.path
    assert again.lock.lock_digest == built.lock.lock_digest
    assert imported_version(again.interpreter) == "1.0"


def test_the_wheel_content_not_its_path_enters_the_build_hash(
    workspace: Workspace, package_index: PackageIndex, tmp_path: Path
) -> None:
    first = register_folder(workspace, tmp_path / "a", package_index.url)
    same = register_folder(workspace, tmp_path / "b", package_index.url)
    changed = register_folder(workspace, tmp_path / "c", package_index.url, body="CHANGED = 1")

    assert same.build_hash == first.build_hash
    assert changed.build_hash != first.build_hash
    built = ensure_built(workspace, changed)
    out = subprocess.run(
        [str(built.interpreter), "-c", "import demo; print(demo.CHANGED)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "1"
