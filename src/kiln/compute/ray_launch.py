"""``python -m kiln.compute.ray_launch SCRIPT ARGS...``: how a run starts on a Ray worker.
Standard library only (it runs on the cluster's Python, in the run's environment).

It runs the script as a child, then copies ``./outputs`` to ``KILN_OUTPUTS_DIR`` (the run's
folder in the workspace, reachable from the workers on a shared filesystem) and exits with the
script's exit code.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

OUTPUTS_VARIABLE = "KILN_OUTPUTS_DIR"


def _copy_outputs() -> None:
    source, target = Path("outputs"), os.environ.get(OUTPUTS_VARIABLE)
    if not target or not source.is_dir():
        return
    try:
        shutil.copytree(source, target, dirs_exist_ok=True)
    except OSError as exc:
        print(
            f"[kiln] outputs stay on this node: {target} is not reachable here ({exc}); "
            "put the workspace on a filesystem every node mounts at the same path",
            file=sys.stderr,
        )


def main(argv: list[str]) -> int:
    child = subprocess.Popen([sys.executable, *argv])
    # Ray stops a job with SIGTERM to its process group; the script gets it too, and we wait.
    signal.signal(signal.SIGTERM, lambda *_: None)
    code = child.wait()
    _copy_outputs()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
