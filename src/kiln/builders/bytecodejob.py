"""Compile a new environment's bytecode after it is ready, in the background.

uv installs no bytecode, so a user's first import compiles what it imports. A build is ready
without any (linking thousands of files was a third of a warm build's wall time); this job
first links in what the shared store already has (kiln.builders.bytecode: a few hundred ms,
so a first import soon finds it), then compiles the rest with the environment's own
interpreter (``compileall``, which skips files whose bytecode is current, at the lowest CPU
priority) and moves the new files into the store, so the next environment with the same
packages links them in. It holds no reference on the
environment: ``kiln cache gc`` moves a folder out of ``envs/`` before deleting it, so a job
whose environment is removed meanwhile finds its paths gone and stops writing. Any failure only
leaves bytecode uncompiled: imports compile it as they would.

Run as ``python -m kiln.builders.bytecodejob ENV INTERPRETER STORE``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

from kiln.builders import bytecode

LOWEST_PRIORITY = 19


def start(dest: Path, python: Path, store: Path) -> int | None:
    """Start the job for the ready environment ``dest``; returns its pid (None: nothing to do)."""
    if not bytecode.site_packages(dest) or not python.exists():
        return None
    # The same Kiln as this process, wherever it was imported from (a source checkout too).
    kiln_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [kiln_root, os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", __name__, str(dest), str(python), str(store)],
        env={**os.environ, "PYTHONPATH": path},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C of the build leaves it alone
    )
    # Reaped when it ends, in a long-lived process (the SDK, a server); a CLI exits first.
    threading.Thread(target=process.wait, daemon=True).start()
    return process.pid


def running(under: Path) -> list[int]:
    """The pids of jobs compiling an environment under ``under`` (Linux: read from /proc),
    for whoever must wait for them (tests, the benchmark)."""
    wanted = [__name__.encode(), str(under).encode()]
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if all(part in command for part in wanted):
            pids.append(int(entry.name))
    return pids


def compile_and_share(dest: Path, python: Path, store: Path) -> int:
    """Link what the store has into ``dest``'s site-packages, compile what still lacks
    bytecode, then share it; returns how many files went into (or came from) the store."""
    linked = bytecode.link_known(dest, store)
    for site in bytecode.site_packages(dest):
        # Timestamp bytecode whatever SOURCE_DATE_EPOCH says: the store shares only that.
        timestamp = ["--invalidation-mode", "timestamp"]
        subprocess.run(
            [str(python), "-I", "-m", "compileall", "-q", "-j", "0", *timestamp, str(site)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,  # a source that does not compile (a Python 2 example) stays as it is
        )
    return linked + bytecode.share_written(dest, store)


def main(argv: list[str]) -> int:
    with contextlib.suppress(OSError):
        os.nice(LOWEST_PRIORITY)
    dest, python, store = (Path(arg) for arg in argv)
    with contextlib.suppress(OSError):  # the environment may be removed meanwhile
        compile_and_share(dest, python, store)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
