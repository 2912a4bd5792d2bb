"""The warm path of `kiln env exec|which` (standard library only) must agree with the full path,
and step aside whenever the full path would do something else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kiln.builds import ensure_built
from kiln.cache import Cache
from kiln.fastexec import find_warm, pointer_path
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, definition, register
from kilntesting.cli import imported_modules, run_kiln

_SHOW = "import json, os, sys, demo; print(json.dumps([sys.executable, sys.prefix, os.environ['GREETING'], demo.__version__]))"


def _run(interpreter: str, env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [interpreter, "-c", _SHOW], env=env, capture_output=True, text=True, check=True
    )
    shown: list[str] = json.loads(out.stdout)
    return shown


def test_the_warm_path_agrees_with_the_full_path_and_steps_aside(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    ws = sqlite_workspace
    package_index.publish("demo", "1.0")
    data = definition("warm", ["demo"], package_index.url)
    record = register(ws, {**data, "environment_variables": {"GREETING": "hi ${USER_PART}"}})
    assert find_warm(ws.registry_file, ws.cache_root, "warm") is None  # nothing built yet
    run_kiln("env", "build", "warm", env=cli_env)

    # The full path computes the activation from the builder; the warm path reads what the
    # build recorded, knowing no builder. Both must start the same process.
    built = ensure_built(ws, record)
    warm = find_warm(ws.registry_file, ws.cache_root, "warm:1")
    assert warm is not None
    assert (warm.key, warm.path, warm.interpreter) == (built.key, built.path, built.interpreter)
    base = {"PATH": "/usr/bin:/bin", "USER_PART": "there", "PYTHONHOME": "/nowhere"}
    full_env = built.activation.environment(record.definition.environment_variables, base)
    assert warm.process_environment(base) == full_env
    assert full_env["GREETING"] == "hi there"
    assert full_env != base and "PYTHONHOME" not in full_env  # the activation did something
    ran = _run(str(warm.interpreter), warm.process_environment(base))
    assert ran == _run(str(built.interpreter), full_env)
    assert ran[1:] == [str(built.path), "hi there", "1.0"]

    # A newer lock generation (made on another machine sharing the workspace): the full path
    # must build it here, so the warm path steps aside until it has.
    package_index.publish("demo", "2.0")
    ensure_built(ws, record, refresh=True, cache=Cache(tmp_path / "elsewhere"))
    assert find_warm(ws.registry_file, ws.cache_root, "warm") is None
    run_kiln("env", "build", "warm", env=cli_env)
    rebuilt = find_warm(ws.registry_file, ws.cache_root, "warm")
    assert rebuilt is not None and rebuilt.key != built.key

    # A broken environment: the full path rebuilds it and says why.
    (rebuilt.path / "pyvenv.cfg").unlink()
    assert find_warm(ws.registry_file, ws.cache_root, "warm") is None
    assert find_warm(ws.registry_file, ws.cache_root, "Kiln-minimal-py311") is None  # curated


def test_a_build_through_ensure_built_alone_takes_the_warm_path_next(
    sqlite_workspace: Workspace, package_index: PackageIndex
) -> None:
    ws = sqlite_workspace
    package_index.publish("demo", "1.0")
    record = register(ws, definition("sdk-only", ["demo"], package_index.url))
    built = ensure_built(ws, record)  # what Environment.build() and runs do: no CLI involved
    warm = find_warm(ws.registry_file, ws.cache_root, "sdk-only")
    assert warm is not None and (warm.key, warm.interpreter) == (built.key, built.interpreter)

    # A pointer from before activations were recorded: the warm path steps aside, and the
    # next ensure_built records the activation again.
    pointer = pointer_path(ws.cache_root, record.build_hash)
    old = json.loads(pointer.read_text())
    del old["activation"]
    pointer.write_text(json.dumps(old))
    assert find_warm(ws.registry_file, ws.cache_root, "sdk-only") is None
    ensure_built(ws, record)
    assert find_warm(ws.registry_file, ws.cache_root, "sdk-only") == warm


def test_the_warm_path_imports_no_heavy_library_and_no_builder() -> None:
    # uuid, shutil and hashlib too: 7, 4 and 1 ms of a warm exec's start, needed only to build.
    probe = (
        "import sys; from pathlib import Path; from kiln.fastexec import find_warm; "
        "import kiln.ready; "
        "find_warm(Path('/nonexistent/registry.db'), Path('/nonexistent'), 'x'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'pydantic', 'yaml', 'alembic', 'filelock', 'asyncio', 'uuid', 'shutil', "
        "'hashlib') or m.startswith('kiln.builders')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_warm_exec_and_which_take_the_short_tree_and_import_nothing_heavy(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    package_index.publish("demo", "1.0")
    register(sqlite_workspace, definition("short", ["demo"], package_index.url))
    run_kiln("env", "build", "short", env=cli_env)
    warm = find_warm(sqlite_workspace.registry_file, Path(cli_env["KILN_CACHE_DIR"]), "short")
    assert warm is not None
    prefix = "import sys; print(sys.prefix)"
    for argv, printed in (
        (["env", "which", "short"], f"{warm.interpreter}\n"),
        (["env", "exec", "short", "--", "python", "-c", prefix], f"{warm.path}\n"),
    ):
        out, modules = imported_modules(argv, cli_env)
        assert out == printed
        heavy = {m for m in modules if m.split(".")[0] in ("sqlalchemy", "pydantic", "yaml")}
        assert heavy == set(), argv
        # The full argument tree imports every command module; the short tree only its own.
        assert "kiln.cli.build_cmds" in modules and "kiln.cli.run_cmds" not in modules, argv
