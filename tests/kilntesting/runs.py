"""Helpers for the run tests: scripts to run and the real CLI on a workspace and cache (the
``project`` and ``shared_cache`` fixtures are in kilntesting.fixtures)."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

from kiln.compute.runfolder import run_folder
from kiln.workspace import Workspace
from kilntesting.cli import KILN, check_published_schema

# The environment the ``project`` fixture registers: python only, nothing to download.
PYTHON_ONLY = {"name": "py", "python": {"version": "3.11"}}


def write_script(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def wait_for_output(ws: Workspace, run_id: str, text: str, limit: float = 120.0) -> None:
    """Until the run's log holds ``text``; a log still without it after ``limit`` seconds
    fails the test."""
    log = run_folder(ws, run_id) / "output.log"
    deadline = time.monotonic() + limit
    while not (log.exists() and text in log.read_text()):
        assert time.monotonic() < deadline, f"{run_id} never wrote {text!r}"
        time.sleep(0.2)


def address(ws: Workspace) -> str:
    """What ``KILN_WORKSPACE`` names ``ws`` by: its folder, or its server's URL."""
    return ws.server_url or str(ws.path)


def kiln_cli(
    ws: Workspace, cache: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "KILN_WORKSPACE": address(ws), "KILN_CACHE_DIR": str(cache)}
    result = subprocess.run(
        [*KILN, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if "--json" in args and result.returncode == 0 and result.stdout.strip():
        check_published_schema(args, result.stdout)
    return result


def run_json(ws: Workspace, cache: Path, run_id: str) -> dict[str, Any]:
    result = kiln_cli(ws, cache, "run", "show", run_id, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data
