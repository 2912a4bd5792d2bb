"""The plumbing every compute target and runs' core share: a run's folder in the workspace, the
writer of its log, the storing of its outputs, and Kiln's package made importable by a script.

A run's folder and live log stay on the machine that runs it. For a workspace served by
``kiln server`` that is ``local_side``: an embedded workspace of this user's for that server, in
the user's Kiln data folder (``KILN_DATA_DIR`` moves it); the run's record, metrics and log text
are the server's, its snapshot and outputs in the server's artifact store (runs/sharedfiles.py).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.workspace import Workspace

LOG_FILE = "output.log"
DATA_DIR_VARIABLE = "KILN_DATA_DIR"
_LOCAL_SIDES: dict[str, Workspace] = {}


def data_dir() -> Path:
    """The user's Kiln data folder; under tests only where ``KILN_DATA_DIR`` says."""
    if os.environ.get(DATA_DIR_VARIABLE):
        return Path(os.environ[DATA_DIR_VARIABLE])
    if os.environ.get("PYTEST_VERSION"):
        from kiln.errors import WorkspaceError

        raise WorkspaceError(
            f"refusing the per-user data folder under tests; set {DATA_DIR_VARIABLE}"
        )
    from kiln.userdirs import data_path

    return data_path()


def local_side(workspace: Workspace) -> Workspace:
    """The workspace that keeps this machine's part of the runs of ``workspace``: itself, or for
    a server one embedded workspace per server URL, made on first use."""
    if workspace.server_url is None:
        return workspace
    key = f"{data_dir()}\0{workspace.server_url}"  # tests move the data folder
    found = _LOCAL_SIDES.get(key)
    if found is None:
        import hashlib
        import re

        from kiln.private import private_folder
        from kiln.workspace import Workspace
        from kiln.workspacefolder import CONFIG_FILE, WORKSPACE_DIR

        # A readable name that needs no quoting (SQLite's URL would undo it), made unique.
        readable = re.sub(r"[^A-Za-z0-9.-]+", "_", workspace.server_url.split("://", 1)[1])
        unique = hashlib.sha256(workspace.server_url.encode()).hexdigest()[:8]
        folder = data_dir() / "servers" / f"{readable}-{unique}"
        if (folder / WORKSPACE_DIR / CONFIG_FILE).is_file():
            found = Workspace(folder)  # no registry opened: most commands never need it
        else:
            found = Workspace.create(private_folder(folder))
        _LOCAL_SIDES[key] = found
    return found


def run_folder(workspace: Workspace, run_id: str) -> Path:
    """The run's folder on this machine: its live log, metrics and working copy."""
    return local_side(workspace).root / "runs" / run_id


class RunOutput:
    """The run's log file, and the console when the user watches."""

    def __init__(self, path: Path, echo: IO[bytes] | None) -> None:
        self.file = path.open("ab")
        self.echo = echo

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.file.flush()
        if self.echo is not None:
            self.echo.write(data)
            self.echo.flush()

    def line(self, text: str) -> None:
        """One line of Kiln's own, marked as such among the script's output."""
        self.write(f"[kiln] {text}\n".encode())

    def close(self) -> None:
        self.file.close()


def collect_outputs(workspace: Workspace, outputs: Path) -> dict[str, Any]:
    """Store the folder ``outputs`` in the artifact store; the run record's fields for it."""
    from kiln.environment.files import context_files

    if not outputs.is_dir():
        return {}
    listing = [
        {"name": f"outputs/{rel}", "size": path.stat().st_size}
        for rel, path in context_files(outputs, field="outputs")
    ]
    if not listing:
        return {}
    digest = local_side(workspace).artifacts.put_tree(outputs, field="outputs")
    return {"outputs_digest": digest, "outputs": listing}


def with_kiln_importable(env: dict[str, str], folder: Path) -> dict[str, str]:
    """``env`` with Kiln's package importable (runs' context, the scoring runtime) through
    ``PYTHONPATH``: nothing is installed into the environment."""
    overlay = str(kiln_python_path(folder))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (overlay, env.get("PYTHONPATH", "")) if p)
    return env


def kiln_python_path(folder: Path) -> Path:
    """A folder holding only a link to Kiln's own package, for the script's PYTHONPATH: the
    script can ``from kiln import Run`` and nothing else of Kiln's environment leaks in."""
    overlay = folder / "python"
    link = overlay / "kiln"
    if not link.exists():
        overlay.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            link.symlink_to(kiln_package(), target_is_directory=True)
    return overlay


def kiln_package() -> Path:
    """The folder of Kiln's own package (``kiln/``)."""
    return Path(__file__).resolve().parents[1]
