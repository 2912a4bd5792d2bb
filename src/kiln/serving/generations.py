"""What one generation of a deployment's workers is made of: the environment (held in the
cache while the generation serves), the source snapshot and models fetched into its folder,
and the command and environment each worker starts with, as a process on this machine's
environment or as a container of the environment's image (``containers``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.serving import containers

if TYPE_CHECKING:
    from kiln.buildlog import Reporter
    from kiln.ready import Ready
    from kiln.serving.specs import DeploymentSpec
    from kiln.workspace import Workspace


@dataclass
class Generation:
    number: int
    spec: DeploymentSpec
    folder: Path
    ready: Ready  # the environment, held in the cache while this generation serves
    image: containers.Image | None = None  # container workers run this image
    argv: list[str] = field(default_factory=list)  # a process worker's command; a
    # container worker's runtime arguments (paths inside the container)
    env: dict[str, str] = field(default_factory=dict)
    variables: list[str] = field(default_factory=list)  # passed to containers by name
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    containers: dict[int, str] = field(default_factory=dict)  # worker pid -> container name

    def serving_fields(self) -> dict[str, object]:
        """What the deployment record says of the generation that serves."""
        if self.image is None:
            return {}
        return {
            "image": self.image.reference,
            "image_digest": self.image.digest,
            "containers": json.dumps(sorted(self.containers.values())),
        }


def prepare(
    workspace: Workspace,
    number: int,
    spec: DeploymentSpec,
    folder: Path,
    *,
    in_container: bool,
    reporter: Reporter,
) -> Generation:
    from kiln import catalog

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env_record = catalog.get(workspace, spec.env_name, spec.env_version)
    reporter.message(f"generation {number}: environment {env_record.reference}")
    image = None
    if in_container:
        ready, image = containers.ready_image(workspace, env_record, reporter)
    else:
        from kiln.ready import ready_and_held

        ready = ready_and_held(workspace, record=env_record, reporter=reporter)
    generation = Generation(number, spec, folder, ready, image)
    try:
        if image is None:
            ready.require_this_machine("a deployment")
        model_dir = _fetch(workspace, spec, folder)
        if image is None:
            _as_processes(generation, model_dir)
        else:
            _as_containers(generation, model_dir)
    except BaseException:
        ready.release()
        raise
    return generation


def _fetch(workspace: Workspace, spec: DeploymentSpec, folder: Path) -> Path:
    """The source snapshot in ``folder/src`` and the models below ``folder/models``; the
    model folder score.py is given."""
    from kiln.compute.runfolder import local_side
    from kiln.serving import models

    local_side(workspace).artifacts.extract_tree(spec.source_snapshot, folder / "src")
    model_root = folder / "models"
    folders = []
    for reference in spec.models:
        record = models.get(workspace, *models.parse_model_reference(reference))
        folders.append(model_root / record.name / str(record.version))
        models.download(workspace, record, folders[-1])
    # Azure ML's rule: one model, its own folder; several, the folder above theirs.
    return folders[0] if len(folders) == 1 else model_root


def _runtime_arguments(spec: DeploymentSpec, source: Path, model_dir: Path) -> list[str]:
    return [
        "--entry-script",
        str(source / spec.entry_script),
        "--model-dir",
        str(model_dir),
        "--app-root",  # as Azure ML: the source folder, wherever score.py is in it
        str(source),
        "--max-body-bytes",
        str(spec.max_body_bytes),
        *(["--show-errors"] if spec.show_errors else []),
    ]


def _as_processes(generation: Generation, model_dir: Path) -> None:
    """Workers on this machine: the environment's interpreter, Kiln on PYTHONPATH."""
    from kiln.compute.runfolder import with_kiln_importable
    from kiln.credentials import TOKEN_VARIABLE
    from kiln.secrets import expand

    ready, spec, folder = generation.ready, generation.spec, generation.folder
    # The supervisor's team-server token stays with it: scoring never talks to the server.
    inherited = {key: value for key, value in os.environ.items() if key != TOKEN_VARIABLE}
    env = ready.process_environment(inherited)
    for key, value in spec.environment_variables.items():
        env[key] = expand(value, env, default="")
    with_kiln_importable(env, folder)
    env["PYTHONUNBUFFERED"] = "1"
    command = _runtime_arguments(spec, folder / "src", model_dir)
    generation.argv = ready.activation.command(
        [str(ready.interpreter), "-m", "kiln.serving.runtime", *command]
    )
    generation.env = env


def _as_containers(generation: Generation, model_dir: Path) -> None:
    """Workers in containers of the image: the same arguments, with the paths inside."""
    spec, folder = generation.spec, generation.folder
    inside = containers.MODELS / model_dir.relative_to(folder / "models")
    generation.argv = _runtime_arguments(spec, Path(containers.SOURCE), Path(inside))
    named = containers.variables(generation.ready.variables, spec.environment_variables, os.environ)
    generation.env = {**os.environ, **named}
    generation.variables = sorted(named)
