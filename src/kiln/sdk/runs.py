"""Azure ML's names for runs: ``Experiment``, ``ScriptRunConfig``, ``Run``.

``from kiln import Run`` also works inside a training script, in the user's environment where
only the standard library is guaranteed: this module imports nothing else at load time, and
``Run.get_context()`` needs nothing more.
"""

from __future__ import annotations

import builtins  # Run.list (Azure's name) hides the builtin inside the class
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.compute import DEFAULT_TARGET
from kiln.errors import KilnError, NotFound
from kiln.runs import context as _context

if TYPE_CHECKING:
    from collections.abc import Iterator

    from kiln.runs.store import RunRecord
    from kiln.sdk.environment import Environment
    from kiln.workspace import Workspace


# Where Azure's Run.get_details() names a field differently from Kiln's public run schema.
_AZURE_KEYS = {
    "id": "runId",
    "created_at": "createdTimeUtc",
    "started_at": "startTimeUtc",
    "ended_at": "endTimeUtc",
}


_LIST_PAGE = 500


class RunFailed(KilnError):
    """``wait_for_completion`` of a run that did not complete (Azure's ActivityFailedException)."""

    exit_code = 1
    status = 409


class ScriptRunConfig:
    def __init__(
        self,
        source_directory: str | os.PathLike[str] = ".",
        script: str | None = None,
        arguments: list[Any] | None = None,
        environment: Any = None,
        compute_target: str = DEFAULT_TARGET,
    ) -> None:
        if not script:
            raise KilnError("ScriptRunConfig needs script='train.py' (a file in source_directory)")
        self.source_directory = Path(source_directory)
        self.script = script
        self.arguments = [str(a) for a in arguments or []]
        self.environment = environment
        self.compute_target = compute_target

    def __repr__(self) -> str:
        return f"ScriptRunConfig(script={self.script!r}, target={self.compute_target!r})"


class Experiment:
    def __init__(self, workspace: Workspace, name: str) -> None:
        from kiln.runs.store import check_experiment_name

        self.workspace = workspace
        self.name = check_experiment_name(name)

    def submit(self, config: ScriptRunConfig) -> Run:
        """Record the run and start it in the background; returns at once."""
        from kiln.runs import core

        request = core.RunRequest(
            script=config.script,
            source_directory=config.source_directory,
            arguments=config.arguments,
            environment=config.environment,
            environment_source=config.source_directory,
            compute_target=config.compute_target,
            experiment=self.name,
        )
        return Run(self.workspace, core.submit(self.workspace, request, detach=True).id)

    def get_runs(self) -> Iterator[Run]:
        """Every run of the experiment, newest first, read a page at a time (azureml-core's
        ``Experiment.get_runs`` is a generator too)."""
        return Run.list(self)

    def __repr__(self) -> str:
        return f"Experiment({self.name!r})"


class Run:
    """A run in a workspace. Inside a training script use ``Run.get_context()``."""

    def __init__(self, workspace: Workspace, run_id: str) -> None:
        self.workspace = workspace
        self.id = run_id

    @staticmethod
    def get_context() -> _context.ScriptRunContext | _context.OfflineRunContext:
        return _context.get_context()

    @staticmethod
    def list(experiment: Experiment, status: str | None = None) -> Iterator[Run]:
        """Azure's ``Run.list``: the experiment's runs, newest first, in ``status`` if given,
        read a page at a time (filtered by the database, as ``kiln run list --status``)."""
        from kiln.runs.core import list_runs

        offset = 0
        while found := list_runs(
            experiment.workspace, experiment=experiment.name, status=status,
            limit=_LIST_PAGE, offset=offset,
        ):  # fmt: skip
            yield from (Run(experiment.workspace, r.id) for r in found)
            offset += len(found)

    # Reading.
    def _record(self) -> RunRecord:
        from kiln.runs.core import get

        return get(self.workspace, self.id)

    @property
    def experiment(self) -> Experiment:
        return Experiment(self.workspace, self._record().experiment)

    def get_status(self) -> str:
        return self._record().status

    def get_details(self) -> dict[str, Any]:
        """The run's details under the key names of Azure's ``Run.get_details()``."""
        from kiln.runs.views import details

        return {
            _AZURE_KEYS.get(key, key): value
            for key, value in details(self.workspace, self._record()).items()
        }

    def get_metrics(self) -> dict[str, Any]:
        from kiln.runs.views import metrics

        return metrics(self.workspace, self._record())

    def get_environment(self) -> Environment:
        from kiln.sdk.environment import Environment

        record = self._record()
        return Environment.get(self.workspace, record.env_name, record.env_version)

    def get_file_names(self) -> builtins.list[str]:
        from kiln.runs.views import file_names

        return file_names(self._record())

    def download_file(
        self, name: str, output_file_path: str | os.PathLike[str] | None = None
    ) -> Path:
        from kiln.runs.core import save_file

        return save_file(self.workspace, self.id, name, Path(output_file_path or Path(name).name))

    def download_files(
        self,
        prefix: str = "outputs",
        output_directory: str | os.PathLike[str] | None = None,
        append_prefix: bool = True,
    ) -> builtins.list[Path]:
        base = Path(output_directory or ".")
        names = [n for n in self.get_file_names() if n.startswith(prefix)]
        if not names:
            raise NotFound(f"run {self.id} has no files under {prefix!r}")
        stripped = prefix.rstrip("/") + "/"
        return [
            self.download_file(
                n, base / (n if append_prefix or not n.startswith(stripped) else n[len(stripped) :])
            )
            for n in names
        ]

    # Acting.
    def log(self, name: str, value: Any, description: str = "") -> None:
        self.log_metrics({name: value})

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        from kiln.runs.core import log_metrics

        log_metrics(self.workspace, self.id, metrics)

    def register_model(
        self,
        model_name: str,
        model_path: str = "outputs",
        tags: dict[str, str] | None = None,
        description: str | None = None,
    ) -> Any:
        """Register a file or folder of this run's outputs as a model (with this run and its
        environment as its lineage); returns the ``Model``."""
        from kiln.sdk.serving import Model
        from kiln.serving.models import register_from_run

        record = register_from_run(
            self.workspace, self.id, model_path, model_name, tags=tags, description=description
        )
        return Model(self.workspace, record.name, record.version)

    def cancel(self) -> None:
        from kiln.runs.core import cancel

        cancel(self.workspace, self.id)

    def wait_for_completion(
        self, show_output: bool = False, raise_on_error: bool = True, timeout: float | None = None
    ) -> dict[str, Any]:
        """Block until the run ends (streaming its log with ``show_output``); returns the
        details, and raises RunFailed if it did not complete and ``raise_on_error``."""
        from kiln.runs.core import follow

        record = follow(
            self.workspace, self.id, sys.stdout.buffer if show_output else None, timeout=timeout
        )
        if raise_on_error and record.status != "Completed":
            raise RunFailed(f"run {self.id} {record.status.lower()}: {record.error or 'no reason'}")
        return self.get_details()

    def __repr__(self) -> str:
        return f"Run(id={self.id!r})"
