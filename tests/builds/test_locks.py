"""Locks: the first resolution of a build hash is what every later build installs, until
``--refresh`` makes a new generation; exported locks install with plain uv and pip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from kiln.builds import ensure_built
from kiln.workspace import Workspace
from kilntesting.builds import (
    PackageIndex,
    build_rows,
    definition,
    installed_versions,
    lock_generations,
    register,
)
from kilntesting.cli import run_kiln


def test_a_later_build_in_a_fresh_cache_installs_the_stored_lock_not_the_newest(
    workspace: Workspace,
    package_index: PackageIndex,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package_index.publish("tiny-dep", "1.0")
    package_index.publish("demo", "1.0", requires=["tiny-dep"])
    record = register(workspace, definition("demo", ["demo"], package_index.url))
    first = ensure_built(workspace, record)
    assert installed_versions(first.interpreter) == {"demo": "1.0", "tiny-dep": "1.0"}

    package_index.publish("demo", "2.0", requires=["tiny-dep>=2"])
    package_index.publish("tiny-dep", "2.0")
    # Another machine (here: an empty cache) building the same registered environment.
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "other-machine-cache"))
    package_index.requests.clear()
    elsewhere = ensure_built(workspace, record)

    assert elsewhere.built_now and elsewhere.path != first.path
    assert installed_versions(elsewhere.interpreter) == {"demo": "1.0", "tiny-dep": "1.0"}
    assert elsewhere.lock == first.lock and elsewhere.key == first.key
    # No resolving: only the install reads demo's index page (once per uv process), to find
    # the locked 1.0 files, whose hashes it then checks.
    assert package_index.requests.count("/simple/demo/") == 1

    refreshed = ensure_built(workspace, record, refresh=True)

    assert refreshed.built_now
    assert installed_versions(refreshed.interpreter) == {"demo": "2.0", "tiny-dep": "2.0"}
    assert refreshed.lock.generation == 2
    assert refreshed.previous_lock is not None and refreshed.previous_lock.generation == 1
    assert refreshed.key != first.key  # the generation-1 build stays usable
    assert lock_generations(workspace, record.build_hash) == [1, 2]
    assert not ensure_built(workspace, record).built_now  # later builds use generation 2
    assert installed_versions(first.interpreter) == {"demo": "1.0", "tiny-dep": "1.0"}


def test_refresh_from_the_cli_prints_the_package_diff_and_keeps_old_generations(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    package_index.publish("tiny-dep", "1.0")
    package_index.publish("demo", "1.0", requires=["tiny-dep"])
    record = register(sqlite_workspace, definition("demo", ["demo"], package_index.url))
    run_kiln("env", "build", "demo", env=cli_env)
    package_index.publish("demo", "2.0", requires=["tiny-dep"])
    package_index.publish("extra-dep", "0.1")
    package_index.publish("demo", "3.0", requires=["extra-dep"])

    shown = run_kiln("env", "build", "demo", "--refresh", env=cli_env).stdout

    changes = shown.split("lock generation 1 -> 2:\n")[1].splitlines()
    assert sorted(changes) == [
        "  + extra-dep==0.1",
        "  - tiny-dep==1.0",
        "  demo==1.0 -> demo==3.0",
    ]
    assert "lock generation 2" in shown.splitlines()[0]
    unchanged = run_kiln("env", "build", "demo", "--refresh", env=cli_env).stdout
    assert "the lock is unchanged" in unchanged
    assert lock_generations(sqlite_workspace, record.build_hash) == [1, 2]

    old = run_kiln("env", "lock", "demo", "--generation", "1", env=cli_env).stdout
    assert "generation 1" in old.splitlines()[0]
    assert [ln.split(" ")[0] for ln in old.splitlines() if "==" in ln] == [
        "demo==1.0",
        "tiny-dep==1.0",
    ]
    newest = run_kiln("env", "lock", "demo", env=cli_env).stdout
    assert [ln.split(" ")[0] for ln in newest.splitlines() if "==" in ln] == [
        "demo==3.0",
        "extra-dep==0.1",
    ]
    statuses = [r["status"] for r in build_rows(sqlite_workspace, record.build_hash)]
    assert statuses == ["succeeded", "succeeded"]  # the unchanged refresh built nothing


def test_exported_locks_install_with_plain_uv_and_pip(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    from kiln.builders.uvtool import uv_binary

    package_index.publish("tiny-dep", "1.0")
    package_index.publish("tiny-dep", "1.5")
    package_index.publish("demo", "1.0", requires=["tiny-dep<2"])
    package_index.publish("other", "0.3")
    record = register(sqlite_workspace, definition("demo", ["demo", "other"], package_index.url))
    built = ensure_built(sqlite_workspace, record)
    locked = {p["name"]: p["version"] for p in built.lock.packages}
    assert locked == {"demo": "1.0", "tiny-dep": "1.5", "other": "0.3"}
    package_index.publish("tiny-dep", "1.9")  # newer than the lock: must not be picked

    exported = tmp_path / "exported.txt"
    run_kiln("env", "lock", "demo", "--format", "requirements", "-o", str(exported), env=cli_env)
    text = exported.read_text()
    assert text.count("--hash=sha256:") == 3

    plain = tmp_path / "plain-uv"
    uv_env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-plain"), "UV_NO_CONFIG": "1"}
    subprocess.run(
        [uv_binary(), "venv", "-q", "--python", "3.11", str(plain)], check=True, env=uv_env
    )
    subprocess.run(
        [
            uv_binary(),
            "pip",
            "install",
            "-q",
            "--python",
            str(plain / "bin/python"),
            "-r",
            str(exported),
            "--index-url",
            package_index.url,
        ],
        check=True,
        env=uv_env,
    )
    assert installed_versions(plain / "bin/python") == locked

    # pip, as a user without uv would: a stdlib venv (pip comes from ensurepip, offline).
    pip_venv = tmp_path / "plain-pip"
    subprocess.run([sys.executable, "-m", "venv", str(pip_venv)], check=True)
    pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}
    subprocess.run(
        [
            str(pip_venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--require-hashes",
            "-r",
            str(exported),
            "--index-url",
            package_index.url,
        ],
        check=True,
        env=pip_env,
    )
    installed = installed_versions(pip_venv / "bin/python")
    assert {k: v for k, v in installed.items() if k in locked} == locked

    pylock = run_kiln("env", "lock", "demo", "--format", "pylock", env=cli_env).stdout
    data = tomllib.loads(pylock)
    assert data["lock-version"] == "1.0"
    assert {p["name"]: p["version"] for p in data["packages"]} == locked
    assert all(p["wheels"][0]["hashes"]["sha256"] for p in data["packages"])


def _other_patch_release(than: str) -> Path | None:
    """A Python 3.11 whose patch release differs from ``than`` (e.g. Debian's beside pyenv's)."""
    from kiln.builders.interpreters import describe

    for candidate in (Path("/usr/bin/python3.11"), Path(sys._base_executable)):
        if candidate.exists() and describe(candidate).python_version != than:
            return candidate
    return None


def test_a_lock_installs_on_another_patch_release_of_the_same_python(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package_index.publish("demo", "1.0")
    record = register(sqlite_workspace, definition("demo", ["demo"], package_index.url))
    first = ensure_built(sqlite_workspace, record)
    # The lock is for the platform key's Python (3.11), not this machine's patch release.
    assert tomllib.loads(first.lock.lock_text)["requires-python"] == ">=3.11"

    other = _other_patch_release(first.target.python_version)
    if other is None:
        pytest.skip(f"only Python {first.target.python_version} here; no other 3.11 release")
    machine = tmp_path / "other-machine-bin"
    machine.mkdir()
    (machine / "python3.11").symlink_to(other)
    monkeypatch.setenv("PATH", f"{machine}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "other-machine-cache"))
    # The one fake here: Kiln's own interpreter answers a request it satisfies before uv looks
    # at PATH, and a second machine (where Kiln runs on that other release) is not at hand.
    from kiln.builders import interpreters

    monkeypatch.setattr(interpreters, "own", lambda request: None)

    elsewhere = ensure_built(sqlite_workspace, record)

    assert elsewhere.target.python_version != first.target.python_version
    assert elsewhere.lock.generation == 1 and elsewhere.key == first.key
    assert installed_versions(elsewhere.interpreter) == {"demo": "1.0"}
