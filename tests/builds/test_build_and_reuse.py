"""Build once, reuse instantly: a real build from a local index, then reuse, through the core
and through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kiln.builders.base import BuildError
from kiln.builds import ensure_built
from kiln.cache import Cache
from kiln.workspace import Workspace
from kilntesting.builds import (
    PackageIndex,
    Recorder,
    build_rows,
    built_demo,
    definition,
    installed_versions,
    lock_generations,
    register,
)
from kilntesting.cli import run_kiln


def test_first_use_builds_and_locks_everything_later_uses_reuse(
    workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    package_index.publish("tiny-dep", "1.4")
    package_index.publish("demo", "1.0", requires=["tiny-dep>=1"])
    record = register(workspace, definition("demo", ["demo"], package_index.url))
    reporter = Recorder()

    built = ensure_built(workspace, record, reporter=reporter)

    assert built.built_now
    assert built.path.parent == cache_dir / "envs"
    assert built.interpreter.is_relative_to(built.path)
    # Built from a system Python, never from a virtualenv that happens to be active or nearby
    # (the tests run from a checkout with a .venv).
    assert not (built.target.interpreter.parent.parent / "pyvenv.cfg").exists()
    assert reporter.phases[0] == "resolve" and reporter.phases[-1] == "verify"
    assert "install" in reporter.phases
    assert installed_versions(built.interpreter) == {"demo": "1.0", "tiny-dep": "1.4"}
    out = subprocess.run(
        [str(built.interpreter), "-c", "import demo, tiny_dep; print(demo.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "1.0"
    # The lock names the direct and the transitive package, exactly, with their hashes.
    assert built.lock.generation == 1
    assert sorted((p["name"], p["version"]) for p in built.lock.packages) == [
        ("demo", "1.0"),
        ("tiny-dep", "1.4"),
    ]
    assert built.lock.lock_text.count("sha256 = ") == 2
    assert Cache(cache_dir).marker(built.key)["lock_digest"] == built.lock.lock_digest

    requests_before = list(package_index.requests)
    again = ensure_built(workspace, record, reporter=(quiet := Recorder()))

    assert not again.built_now
    assert (again.key, again.path, again.interpreter) == (built.key, built.path, built.interpreter)
    assert quiet.phases == [] and quiet.messages == []  # nothing resolved, installed or checked
    assert package_index.requests == requests_before  # uv never ran
    rows = build_rows(workspace, record.build_hash)
    assert [r["status"] for r in rows] == ["succeeded"]
    assert rows[0]["lock_digest"] == built.lock.lock_digest
    assert lock_generations(workspace, record.build_hash) == [1]


def test_the_cli_builds_locates_runs_and_shows(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    package_index.publish("tiny-dep", "1.4")
    package_index.publish("demo", "1.0", requires=["tiny-dep"])
    data = definition("demo", ["demo"], package_index.url)
    data["environment_variables"] = {"DEMO_GREETING": "hello from kiln"}
    register(sqlite_workspace, data)

    first = run_kiln("env", "build", "demo", env=cli_env)
    interpreter = first.stdout.strip().splitlines()[-1]
    assert "Built demo:1" in first.stdout
    assert "2 packages, lock generation 1" in first.stdout
    assert Path(interpreter).is_relative_to(Path(cli_env["KILN_CACHE_DIR"]) / "envs")

    second = run_kiln("env", "build", "demo", "--json", env=cli_env)
    summary = json.loads(second.stdout)
    assert summary["built"] is False
    assert summary["interpreter"] == interpreter
    assert (summary["packages"], summary["lock_generation"]) == (2, 1)

    assert run_kiln("env", "which", "demo", env=cli_env).stdout.strip() == interpreter

    code = (
        "import os, sys, demo; print(sys.executable, demo.__version__, os.environ['DEMO_GREETING'])"
    )
    ran = run_kiln("env", "exec", "demo", "--", "python", "-c", code, env=cli_env)
    executable, version, greeting = ran.stdout.strip().split(" ", 2)
    assert Path(executable).parent == Path(interpreter).parent
    assert (version, greeting) == ("1.0", "hello from kiln")

    shown = json.loads(run_kiln("env", "show", "demo", "--build", "--json", env=cli_env).stdout)
    build = shown["build"]
    assert build["interpreter"] == interpreter
    assert build["location"] == str(Path(interpreter).parent.parent)
    assert (build["lock_generation"], build["packages"], build["builder"]) == (1, 2, "venv")
    assert build["python"].startswith("3.11.")
    assert build["size_bytes"] > 0
    assert build["tools"]["uv"].startswith("uv ")

    logs = run_kiln("env", "logs", "demo", env=cli_env).stdout
    assert logs.startswith("# succeeded")
    assert "uv pip compile" in logs and "uv pip sync" in logs
    assert "==> verify" in logs

    # The same facts for scripts (run_kiln checks each document against its public schema).
    log = json.loads(run_kiln("env", "logs", "demo", "--json", env=cli_env).stdout)
    assert log["status"] == "succeeded" and log["log"] == logs.split("\n", 1)[1]
    which = json.loads(run_kiln("env", "which", "demo", "--json", env=cli_env).stdout)
    assert which == {"reference": "demo:1", "python": interpreter, "prefix": build["location"]}
    lock = json.loads(run_kiln("env", "lock", "demo", "--json", env=cli_env).stdout)
    assert {(p["name"], p["version"]) for p in lock["packages"]} == {
        ("demo", "1.0"),
        ("tiny-dep", "1.4"),
    }
    assert lock["generation"] == 1 and "demo==1.0" in lock["text"]


def test_a_materialization_broken_since_its_build_is_rebuilt_saying_why(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    record, built = built_demo(sqlite_workspace, package_index)

    built.interpreter.unlink()
    reporter = Recorder()
    rebuilt = ensure_built(sqlite_workspace, record, reporter=reporter)

    assert rebuilt.built_now and rebuilt.path == built.path
    assert installed_versions(rebuilt.interpreter) == {"demo": "1.0"}
    assert len(reporter.messages) == 1
    assert "is broken" in reporter.messages[0] and "bin/python" in reporter.messages[0]
    assert "rebuilding" in reporter.messages[0]
    assert lock_generations(sqlite_workspace, record.build_hash) == [1]  # same lock, reinstalled


def test_a_materialization_whose_base_python_moved_is_rebuilt(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path
) -> None:
    package_index.publish("demo", "1.0")
    record = register(sqlite_workspace, definition("demo", ["demo"], package_index.url))
    built = ensure_built(sqlite_workspace, record)
    config = built.path / "pyvenv.cfg"
    lines = config.read_text().splitlines()
    config.write_text(
        "\n".join("home = /nonexistent/python/bin" if ln.startswith("home") else ln for ln in lines)
    )

    reporter = Recorder()
    rebuilt = ensure_built(sqlite_workspace, record, reporter=reporter)

    assert rebuilt.built_now
    assert any("/nonexistent/python/bin" in m for m in reporter.messages), reporter.messages
    assert installed_versions(rebuilt.interpreter) == {"demo": "1.0"}


def test_user_managed_records_what_the_interpreter_has(
    sqlite_workspace: Workspace, package_index: PackageIndex, cache_dir: Path, tmp_path: Path
) -> None:
    from kiln.builders.uvtool import uv_binary

    package_index.publish("demo", "3.2")
    own = tmp_path / "own-venv"
    uv_env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-own")}
    subprocess.run(
        [uv_binary(), "venv", "-q", "--python", "3.11", str(own)], check=True, env=uv_env
    )
    subprocess.run(
        [
            uv_binary(),
            "pip",
            "install",
            "-q",
            "--python",
            str(own / "bin/python"),
            "demo",
            "--index-url",
            package_index.url,
        ],
        check=True,
        env=uv_env,
    )
    python = own / "bin" / "python"
    data = definition("mine", [], None, user_managed=True, interpreter_path=str(python))
    record = register(sqlite_workspace, data)

    built = ensure_built(sqlite_workspace, record)

    assert built.builder == "user-managed"
    assert built.interpreter == python
    assert {(p["name"], p["version"]) for p in built.lock.packages} == {("demo", "3.2")}
    assert [r["status"] for r in build_rows(sqlite_workspace, record.build_hash)] == ["succeeded"]
    assert not ensure_built(sqlite_workspace, record).built_now

    missing = tmp_path / "nowhere" / "bin" / "python"
    data = definition("gone", [], None, user_managed=True, interpreter_path=str(missing))
    with pytest.raises(BuildError, match=r"`python\.interpreter_path`") as caught:
        ensure_built(sqlite_workspace, register(sqlite_workspace, data))
    assert str(missing) in str(caught.value) and "does not exist" in str(caught.value)
    assert [p.name for p in (cache_dir / "envs").iterdir()] == [built.key]


def test_activate_prints_shell_code_that_keeps_references(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    package_index.publish("demo", "1.0")
    variables = {"API_TOKEN": "${SHELL_SIDE_TOKEN}", "ODD": 'a "quoted" $HOME `x` \\ value'}
    data = definition("act", ["demo==1.0"], package_index.url)
    register(sqlite_workspace, {**data, "environment_variables": variables})
    code = run_kiln("env", "activate", "act", env=cli_env).stdout
    assert "${SHELL_SIDE_TOKEN}" in code  # a reference, expanded by the shell, never a value
    script = f'{code}\nprintf "%s\\n" "$API_TOKEN" "$ODD" "$VIRTUAL_ENV"; command -v python; python -c "import demo"'
    shell = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], "SHELL_SIDE_TOKEN": "tok-123", "PYTHONHOME": "/nowhere"},
    )
    token, odd, venv, python = shell.stdout.splitlines()
    assert (token, odd) == ("tok-123", variables["ODD"])
    assert python == f"{venv}/bin/python"
