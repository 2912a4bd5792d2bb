"""The warm path of `kiln env exec|which` (standard library only) must agree with the full path,
and step aside whenever the full path would do something else."""

from __future__ import annotations

from buildtest import PackageIndex, definition, register, run_kiln

from kiln.builds import activation_environment, ensure_built
from kiln.fastexec import activation, find_warm
from kiln.workspace import Workspace


def test_the_warm_path_agrees_with_the_full_path_and_steps_aside(
    sqlite_workspace: Workspace, package_index: PackageIndex, cli_env: dict[str, str]
) -> None:
    ws = sqlite_workspace
    package_index.publish("demo", "1.0")
    data = definition("warm", ["demo"], package_index.url)
    record = register(ws, {**data, "environment_variables": {"GREETING": "hi ${USER_PART}"}})
    assert find_warm(ws.registry_file, ws.cache_root, "warm") is None  # nothing built yet
    run_kiln("env", "build", "warm", env=cli_env)  # the CLI records the pointer

    built = ensure_built(ws, record)
    warm = find_warm(ws.registry_file, ws.cache_root, "warm:1")
    assert warm is not None
    assert (warm.key, warm.path, warm.interpreter) == (built.key, built.path, built.interpreter)
    base = {"PATH": "/usr/bin", "USER_PART": "there"}
    assert activation(warm.builder, warm.path, warm.variables, base) == activation_environment(
        built, base
    )
    assert activation_environment(built, base)["GREETING"] == "hi there"

    # A newer lock generation: the full path must build it, so the warm path steps aside.
    package_index.publish("demo", "2.0")
    ensure_built(ws, record, refresh=True)
    assert find_warm(ws.registry_file, ws.cache_root, "warm") is None
    run_kiln("env", "build", "warm", env=cli_env)
    rebuilt = find_warm(ws.registry_file, ws.cache_root, "warm")
    assert rebuilt is not None and rebuilt.key != built.key

    # A broken environment: the full path rebuilds it and says why.
    (rebuilt.path / "pyvenv.cfg").unlink()
    assert find_warm(ws.registry_file, ws.cache_root, "warm") is None
    assert find_warm(ws.registry_file, ws.cache_root, "Kiln-minimal-py311") is None  # curated
