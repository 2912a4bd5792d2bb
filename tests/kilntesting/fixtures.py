"""The shared fixtures, a pytest plugin: tests/conftest.py registers it once with
``pytest_plugins``, so every test folder can request them by name.

Only fixtures that are not autouse belong here: an autouse fixture in a plugin would run for
every test of the suite. The per-folder autouse ``cache_dir`` fixtures are in
kilntesting.caches. A fixture of the same name in a test module or a folder's conftest.py
overrides the one here (tests/cli/test_cli.py has its own ``project``, for example).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiln import catalog
from kiln.compute.ray_local import LocalCluster
from kiln.environment.validation import validate_definition
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, served_index
from kilntesting.raycluster import local_ray_cluster
from kilntesting.runs import PYTHON_ONLY
from kilntesting.serving import Runtime, start_runtime
from kilntesting.teamserver import team_server


@pytest.fixture
def package_index(tmp_path: Path) -> Iterator[PackageIndex]:
    """An empty PEP 503 index on 127.0.0.1 for this test: ``publish`` wheels into it."""
    with served_index(tmp_path / "index") as index:
        yield index


@pytest.fixture
def cli_env(tmp_path: Path, cache_dir: Path) -> dict[str, str]:
    """What the real CLI needs: this test's workspace and cache (the folder's ``cache_dir``)."""
    return {"KILN_WORKSPACE": str(tmp_path / "project"), "KILN_CACHE_DIR": str(cache_dir)}


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build cache for a session's run and serving tests: environments are built once."""
    return tmp_path_factory.mktemp("runs-cache")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Workspace]:
    """An embedded workspace with the python-only environment ``py`` registered."""
    ws = Workspace.create(tmp_path / "project")
    catalog.register(ws, validate_definition(PYTHON_ONLY))
    yield ws
    ws.close()


@pytest.fixture(params=["local", "server"])
def anywhere(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """``project``'s workspace, and the same served by a real ``kiln server`` (SQLite) that
    this test's process and CLI calls use as a contributor (``KILN_TOKEN``), keeping their side
    of its runs in a data folder of the test's own: the core behaviour tests take it to run
    against both."""
    if request.param == "local":
        yield request.getfixturevalue("project")
        return
    with team_server(tmp_path / "team") as team:
        monkeypatch.setenv("KILN_CONFIG_DIR", team.env["KILN_CONFIG_DIR"])
        monkeypatch.setenv("KILN_TOKEN", team.token("runner", "contributor"))
        monkeypatch.setenv("KILN_DATA_DIR", str(tmp_path / "data"))
        ws = Workspace(team.url)
        catalog.register(ws, validate_definition(PYTHON_ONLY))
        yield ws


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalCluster]:
    """A real two-node Ray cluster on 127.0.0.1, started once per session (per xdist worker)."""
    with local_ray_cluster() as cluster:
        yield cluster


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """``serve(entry_script, *args, **kw)``: a started runtime, stopped after the test."""
    started: list[Runtime] = []

    def start(entry_script: Path, *args: str, **kwargs: object) -> Runtime:
        log_dir = tmp_path / f"runtime-{len(started)}"
        runtime = start_runtime(entry_script, *args, log_dir=log_dir, **kwargs)  # type: ignore[arg-type]
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.stop()
