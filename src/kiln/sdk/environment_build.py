"""``EnvironmentBuild``: what ``Environment.build(ws)`` returns, as in Azure ML's SDK."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiln.workspace import Workspace


class EnvironmentBuild:
    """A build of one registered version. ``wait_for_completion`` builds it, or reuses the
    cached build at once; afterwards ``interpreter``, ``path`` and ``log`` describe it."""

    def __init__(self, workspace: Workspace, name: str, version: str) -> None:
        self.workspace, self.name, self.version = workspace, name, version
        self.status = "NotStarted"
        self.interpreter: Path | None = None
        self.path: Path | None = None

    def wait_for_completion(self, show_output: bool = False) -> EnvironmentBuild:
        from kiln import catalog
        from kiln.buildlog import SilentReporter
        from kiln.builds import ensure_built
        from kiln.progress import Progress

        record = catalog.get(self.workspace, self.name, self.version)
        reporter = Progress(f"building {record.reference}") if show_output else SilentReporter()
        self.status = "Running"
        try:
            built = ensure_built(self.workspace, record, reporter=reporter)
        except Exception:
            self.status = "Failed"
            raise
        finally:
            if isinstance(reporter, Progress):
                reporter.done()
        self.status = "Succeeded"
        self.interpreter, self.path = built.interpreter, built.path
        if show_output:
            verb = "Built" if built.built_now else "Reused the cached build of"
            print(f"{verb} {record.reference}: {built.interpreter}")
        return self

    @property
    def log(self) -> str:
        """The full log of the latest build of this version."""
        from kiln import catalog
        from kiln.buildinfo import latest_build_log

        record = catalog.get(self.workspace, self.name, self.version)
        stored = latest_build_log(self.workspace, build_hash=record.build_hash)
        return stored.read_text(encoding="utf-8") if stored else ""
