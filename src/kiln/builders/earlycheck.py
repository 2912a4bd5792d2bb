"""The health check's interpreter, started while uv installs: a new venv's check starts its
interpreter (about 20-30 ms) beside ``uv pip sync`` rather than after it. The started
interpreter imports what the check needs, lists its start-up files, and waits for a line on
stdin; then it checks as venvcheck's check does.

Why this proves what a later start would: an interpreter's start reads only the venv's
``pyvenv.cfg`` and, through ``site``, the ``.pth`` files and ``sitecustomize``/``usercustomize``
modules on its path. uv's sync does not touch ``pyvenv.cfg``; if it added or changed any of the
others (a package that ships a ``.pth`` file), the waiting interpreter says so and the check is
run by a new interpreter instead, as before. A check with imports to try
(``python.check_imports``) always starts anew.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kiln.builders.venvcheck import HEALTH_SCRIPT, RESULT, interpreter

RESTART = "kiln-health-restart"
_WAIT = r"""
import csv, json, os, re, sys
def startup_files():
    found = {}
    for folder in sys.path:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.endswith(".pth") or name.startswith(("sitecustomize", "usercustomize")):
                try:
                    info = os.stat(os.path.join(folder, name))
                except OSError:
                    continue
                found[os.path.join(folder, name)] = (info.st_mtime_ns, info.st_size)
    return found
before = startup_files()
sys.stdin.readline()
if startup_files() != before:
    print(RESTART)
    raise SystemExit(0)
""".replace("RESTART", repr(RESTART))


class EarlyCheck:
    """At most one waiting check interpreter: ``start`` it once the venv exists, then take its
    ``result`` after the install, or ``stop`` it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def start(self, dest: Path, locked: list[str]) -> None:
        """Start the interpreter of the venv ``dest`` for a check of the names ``locked``."""
        try:
            script, checked = _WAIT + HEALTH_SCRIPT, json.dumps(sorted(locked))
            self.process = subprocess.Popen(
                [str(interpreter(dest)), "-I", "-B", "-c", script, checked, "[]"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except OSError:  # the check, run later as before, says what is wrong
            self.process = None

    def result(self, timeout: float) -> subprocess.CompletedProcess[str] | None:
        """The check's output now that the packages are installed, or None when it must be run
        by a new interpreter (start-up files changed, or anything unexpected)."""
        process, self.process = self.process, None
        if process is None:
            return None
        try:
            out, err = process.communicate("\n", timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            _kill(process)
            return None
        if RESTART in out.splitlines() or RESULT not in out:
            return None
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def stop(self) -> None:
        if self.process is not None:
            _kill(self.process)
            self.process = None


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.communicate()
