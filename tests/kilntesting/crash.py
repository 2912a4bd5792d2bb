"""What the crash-safety suite (tests/crash) shares: a real workspace and cache driven through
the real CLI, and a command killed with SIGKILL, with every process it started, at a moment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kilntesting.cli import KILN, run_kiln


@dataclass
class Site:
    """A workspace folder and its machine-local build cache."""

    root: Path
    cache: Path

    @property
    def env(self) -> dict[str, str]:
        return {"KILN_WORKSPACE": str(self.root), "KILN_CACHE_DIR": str(self.cache)}

    def kiln(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_kiln(*args, cwd=self.root, env=self.env, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self.kiln(*args, "--json").stdout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """``kiln ARGS`` in a session of its own, so a kill reaches all it started."""
        return subprocess.Popen(
            [*KILN, *args],
            cwd=self.root,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )


def new_site(folder: Path) -> Site:
    site = Site(folder / "project", folder / "cache")
    run_kiln("init", str(site.root))
    return site


def kill_at(proc: subprocess.Popen[str], delay: float) -> bool:
    """SIGKILL ``proc`` and its process group ``delay`` seconds after it started, as a lost
    machine or ``kill -9`` would; True when it was still running (False: it had finished)."""
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    alive = proc.poll() is None
    if alive:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            alive = False
    proc.communicate(timeout=60)
    return alive


def dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def wait_until(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
