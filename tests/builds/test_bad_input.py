"""Bad input gives a clear error naming the cause, and leaves the cache and registry as they
were; a failure is remembered for a while so a retry storm does not rebuild the same error."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.builders.base import BuildError
from kiln.builds import ensure_built
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, build_rows, definition, lock_generations, register
from kilntesting.cli import run_kiln


def _nothing_built(cache_dir: Path) -> bool:
    return not any((cache_dir / "envs").iterdir())


def test_a_missing_package_fails_with_the_command_and_is_remembered(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    cache_dir: Path,
    cli_env: dict[str, str],
) -> None:
    package_index.publish("demo", "1.0")
    data = definition("broken", ["demo", "no-such-package==1.0"], package_index.url)
    record = register(sqlite_workspace, data)

    with pytest.raises(BuildError) as caught:
        ensure_built(sqlite_workspace, record)

    message = str(caught.value)
    assert message.startswith("resolving packages failed: `uv pip compile requirements.in")
    assert "exited with 1:" in message
    assert "no-such-package" in message.splitlines()[-1] or "no-such-package" in message
    assert "not found in the package registry" in message or "no-such-package" in message
    assert lock_generations(sqlite_workspace, record.build_hash) == []
    assert _nothing_built(cache_dir)
    (row,) = build_rows(sqlite_workspace, record.build_hash)
    assert row["status"] == "failed" and row["error"] == message
    requests = len(package_index.requests)

    # Within the TTL: fails at once, without running uv and without a new build record.
    with pytest.raises(BuildError, match=r"failed \d+ s ago: resolving packages failed") as again:
        ensure_built(sqlite_workspace, record)
    assert "--retry" in str(again.value)
    assert len(package_index.requests) == requests
    assert len(build_rows(sqlite_workspace, record.build_hash)) == 1
    # ...and `kiln env logs` still shows the log of the real attempt.
    logs = run_kiln("env", "logs", "broken", env=cli_env).stdout
    assert logs.startswith("# failed")
    assert "$ uv pip compile" in logs and "no-such-package" in logs

    # --retry runs it again (and fails the same way, for real).
    package_index.publish("no-such-package", "1.0")
    built = ensure_built(sqlite_workspace, record, retry=True)
    assert built.built_now
    assert [r["status"] for r in build_rows(sqlite_workspace, record.build_hash)] == [
        "failed",
        "succeeded",
    ]


def test_conflicting_pins_fail_clearly(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    package_index.publish("pinned", "1.0")
    package_index.publish("pinned", "2.0")
    package_index.publish("needs-new", "1.0", requires=["pinned>=2"])
    data = definition("conflict", ["pinned==1.0", "needs-new"], package_index.url)
    record = register(sqlite_workspace, data)

    with pytest.raises(BuildError) as caught:
        ensure_built(sqlite_workspace, record)

    message = str(caught.value)
    assert "`uv pip compile" in message
    assert "pinned==1.0" in message and "needs-new" in message
    assert "unsatisfiable" in message
    assert lock_generations(sqlite_workspace, record.build_hash) == []
    assert _nothing_built(cache_dir)


def test_an_interpreter_that_is_not_installed_lists_those_found(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    data = definition("old", ["demo"], package_index.url, version="3.7")
    record = register(sqlite_workspace, data)

    with pytest.raises(BuildError) as caught:
        ensure_built(sqlite_workspace, record)

    message = str(caught.value)
    assert message.startswith("`python.version` '3.7': no such interpreter on this machine")
    assert "found:" in message and "3.11." in message
    assert "install that Python, change python.version, or let uv install it" in message
    assert "--python-downloads automatic" in message
    assert package_index.requests == []
    assert _nothing_built(cache_dir)


def test_a_module_named_in_check_imports_that_fails_to_import_fails_the_build_and_leaves_nothing(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    package_index.publish("fragile", "1.0", body="raise ImportError('fragile needs libfoo.so.1')")
    data = definition("fragile", ["fragile"], package_index.url, check_imports=["fragile"])
    record = register(sqlite_workspace, data)

    with pytest.raises(BuildError) as caught:
        ensure_built(sqlite_workspace, record)

    message = str(caught.value)
    assert message == (
        "the new environment failed its health check: import fragile failed: "
        "ImportError: fragile needs libfoo.so.1"
    )
    assert _nothing_built(cache_dir)
    assert not [p for p in (cache_dir / "tmp").iterdir() if p.is_dir()]  # staging removed
    (row,) = build_rows(sqlite_workspace, record.build_hash)
    assert row["status"] == "failed" and "health check" in row["error"]
    with pytest.raises(BuildError, match=r"failed to build \d+ s ago: the new environment"):
        ensure_built(sqlite_workspace, record)
    assert len(build_rows(sqlite_workspace, record.build_hash)) == 1


def test_a_module_nobody_named_never_fails_a_build(
    sqlite_workspace: Workspace, package_index: PackageIndex
) -> None:
    # As pyarrow's __dummy__ or duckdb's adbc_driver_duckdb: a top-level name that does not
    # import on its own. The build checks the environment is whole, not the user's imports.
    package_index.publish("fragile", "1.0", body="raise ImportError('fragile needs libfoo.so.1')")
    package_index.publish("sturdy", "1.0")
    data = definition("ok", ["fragile", "sturdy"], package_index.url, check_imports=["sturdy"])

    built = ensure_built(sqlite_workspace, register(sqlite_workspace, data))

    assert built.built_now


def test_a_corrupt_wheel_fails_the_install_and_leaves_nothing(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    wheel = package_index.publish("demo", "1.0")
    record = register(sqlite_workspace, definition("demo", ["demo"], package_index.url))
    ensure_built(sqlite_workspace, record, cache=None)  # the lock holds the good wheel's hash
    wheel.write_bytes(b"this is not a zip file")
    other_cache = cache_dir.parent / "cold-cache"

    from kiln.cache import Cache

    with pytest.raises(BuildError) as caught:
        ensure_built(sqlite_workspace, record, cache=Cache(other_cache))

    message = str(caught.value)
    assert message.startswith("installing the locked packages failed: `uv pip sync")
    assert "zip file" in message  # uv's own words, from the last lines of its output
    assert not any((other_cache / "envs").iterdir())


def test_an_unset_index_variable_is_named(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KILN_INDEX_TOKEN", raising=False)
    url = package_index.url.replace("http://", "http://user:${KILN_INDEX_TOKEN}@")
    record = register(sqlite_workspace, definition("private", ["demo"], url))

    with pytest.raises(
        BuildError, match=r"uses \$\{KILN_INDEX_TOKEN\}, which is not set; export KILN_INDEX_TOKEN"
    ):
        ensure_built(sqlite_workspace, record)
    assert package_index.requests == []
    assert not [p for p in (cache_dir / "tmp").iterdir() if p.name.startswith("log.")]
