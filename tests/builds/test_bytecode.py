"""Bytecode compiled after a build (in the background) is shared between environments through
a store keyed by source content: the next build's job links it in rather than compiling it, a
build that checks imports links it in before they run, and tracebacks name the environment's
own files."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kiln.builds import Built, ensure_built
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, definition, register, wait_for_bytecode

BOOM = "def boom():\n    raise ValueError('boom from shared')\n"
# Imported by a health check: fails unless shared's bytecode is a linked (stored) file already.
PROBE = """
import importlib.util, os
folder = os.path.join(os.path.dirname(importlib.util.find_spec("shared").origin), "__pycache__")
names = os.listdir(folder) if os.path.isdir(folder) else []
if not any(os.stat(os.path.join(folder, n)).st_nlink > 1 for n in names):
    raise RuntimeError("shared's bytecode is not linked in")
"""


def _pyc(built: Built, package: str) -> Path:
    site = next(built.path.glob("lib/python3*/site-packages"))
    return next((site / package / "__pycache__").glob("__init__.*.pyc"))


def _boom(python: Path) -> str:
    """stderr of calling ``shared.boom()`` in ``python``."""
    return subprocess.run(
        [str(python), "-c", "import shared; shared.boom()"],
        capture_output=True,
        text=True,
        check=False,
    ).stderr


def test_bytecode_is_compiled_once_shared_and_names_the_final_path(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    package_index.publish("shared", "1.0", body=BOOM)
    package_index.publish("extra-a", "1.0")
    package_index.publish("extra-b", "1.0")
    first = ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("a", ["shared", "extra-a"], package_index.url)),
    )
    wait_for_bytecode(cache_dir)
    second = ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("b", ["shared", "extra-b"], package_index.url)),
    )

    # The second build is ready without bytecode (its job links it in afterwards).
    wait_for_bytecode(cache_dir)
    one, two = _pyc(first, "shared"), _pyc(second, "shared")
    assert one.stat().st_ino == two.stat().st_ino  # one file, linked into both
    assert one.stat().st_nlink == 3  # and into the store
    assert one.stat().st_ino in {p.stat().st_ino for p in (cache_dir / "bytecode").rglob("*.pyc")}
    extra = _pyc(second, "extra_b")  # compiled after the build, and shared
    assert extra.stat().st_ino in {p.stat().st_ino for p in (cache_dir / "bytecode").rglob("*")}

    stderr = _boom(second.interpreter)
    # The traceback names the file where it is now, and Python took the shared file as
    # valid (it rewrites a stale .pyc by replacing it, which would give a new inode).
    assert "boom from shared" in stderr
    assert f'File "{second.path / "lib"}' in stderr
    assert str(cache_dir / "tmp") not in stderr
    assert _pyc(second, "shared").stat().st_ino == one.stat().st_ino


def test_stored_bytecode_is_never_used_for_different_source(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    package_index.publish("shared", "1.0", body=BOOM)
    package_index.publish("shared", "2.0", body=BOOM.replace("boom from", "two from"))
    old = ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("a", ["shared==1.0"], package_index.url)),
    )
    wait_for_bytecode(cache_dir)
    new = ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("b", ["shared==2.0"], package_index.url)),
    )
    wait_for_bytecode(cache_dir)

    # Run first: the property is what the import runs (and if the background job lost a race
    # with a loaded machine, the import writes the .pyc itself; test one covers the job).
    assert "two from shared" in _boom(new.interpreter)
    assert _pyc(old, "shared").stat().st_ino != _pyc(new, "shared").stat().st_ino


def test_a_build_that_checks_imports_links_known_bytecode_before_them_and_shares_theirs(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    package_index.publish("shared", "1.0", body=BOOM)
    package_index.publish("extra-a", "1.0")
    package_index.publish("probe", "1.0", body=PROBE)
    first = ensure_built(
        sqlite_workspace,
        register(sqlite_workspace, definition("a", ["shared", "extra-a"], package_index.url)),
    )
    wait_for_bytecode(cache_dir)
    data = definition("b", ["shared", "probe"], package_index.url, check_imports=["probe"])
    # The probe's import fails the build unless shared's stored bytecode is linked in already.
    second = ensure_built(sqlite_workspace, register(sqlite_workspace, data))

    assert _pyc(second, "shared").stat().st_ino == _pyc(first, "shared").stat().st_ino
    probe = _pyc(second, "probe")  # written by the check's import, then shared
    assert probe.stat().st_ino in {p.stat().st_ino for p in (cache_dir / "bytecode").rglob("*")}
    wait_for_bytecode(cache_dir)
