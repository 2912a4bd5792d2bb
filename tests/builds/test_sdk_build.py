"""The SDK face of builds, as Azure ML users write it: env.build(ws).wait_for_completion()."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kiln import CondaDependencies, Environment
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, build_rows


def test_build_and_wait_like_azure_ml(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package_index.publish("demo", "1.0")
    env = Environment("sdk-built")
    env.python.conda_dependencies = CondaDependencies.create(
        python_version="3.11", pip_packages=["demo==1.0"]
    )
    env.python.conda_dependencies.set_pip_index_url(package_index.url)
    build = env.build(sqlite_workspace)  # registers it first: version 1
    assert build.status == "NotStarted"
    assert build.wait_for_completion(show_output=True) is build
    assert build.status == "Succeeded" and build.version == "1"
    assert "Built sdk-built:1" in capsys.readouterr().out
    out = subprocess.run(
        [str(build.interpreter), "-c", "import demo; print(demo.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "1.0"
    assert "==> install" in build.log and "==> verify" in build.log
    again = (
        Environment.get(sqlite_workspace, "sdk-built").build(sqlite_workspace).wait_for_completion()
    )
    assert again.path == build.path  # reused, not rebuilt
    assert len(build_rows(sqlite_workspace, env.build_hash)) == 1
