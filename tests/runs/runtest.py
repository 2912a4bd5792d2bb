"""Helpers for the run tests (a plain module; runs/conftest.py star-imports its fixtures)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiln import catalog
from kiln.environment.validation import validate_definition
from kiln.workspace import Workspace
from kilntest import KILN

PYTHON_ONLY = {"name": "py", "python": {"version": "3.11"}}


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build cache for the run tests of a session: environments are built once."""
    return tmp_path_factory.mktemp("runs-cache")


@pytest.fixture(autouse=True)
def cache_dir(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KILN_CACHE_DIR", str(shared_cache))
    return shared_cache


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Workspace]:
    """An embedded workspace with the python-only environment ``py`` registered."""
    ws = Workspace.create(tmp_path / "project")
    catalog.register(ws, validate_definition(PYTHON_ONLY))
    yield ws
    ws.close()


def write_script(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def kiln_cli(
    ws: Workspace, cache: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "KILN_WORKSPACE": str(ws.path), "KILN_CACHE_DIR": str(cache)}
    return subprocess.run(
        [*KILN, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def run_json(ws: Workspace, cache: Path, run_id: str) -> dict[str, Any]:
    result = kiln_cli(ws, cache, "run", "show", run_id, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data
