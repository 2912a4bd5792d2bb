"""``python -m kiln.runs.watch WORKSPACE RUN_ID``: the background watcher of a detached run."""

from __future__ import annotations

import sys

from kiln.runs.execution import execute
from kiln.workspace import Workspace


def main(argv: list[str]) -> int:
    workspace_path, run_id = argv
    execute(Workspace(workspace_path), run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
