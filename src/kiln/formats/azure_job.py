"""An Azure ML v2 command job YAML's inline ``environment:`` (Azure's anonymous environment), so
``kiln run submit --env-file job.yml`` runs in the environment the job names.

Only the environment is read: the command, code, inputs and compute of the job are what
``kiln run submit`` is given on its command line. The job's ``environment_variables`` apply to
its run in Azure, so they join the definition's. Paths (``conda_file``, ``build.path``) are
relative to the job file, as in Azure. The environment needs no name there: it is named after
the job file (``train.yml`` -> ``train``). A job naming a registered environment
(``environment: azureml:NAME:VERSION``) is refused with the ``--env`` to use instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiln.errors import InvalidDefinition
from kiln.formats.base import name_from_folder

_JOB_SCHEMA = "commandjob.schema.json"


def is_job(data: dict[str, Any]) -> bool:
    """True for a command job rather than an environment: environments have no command."""
    return "command" in data or _JOB_SCHEMA in str(data.get("$schema", "")).lower()


def environment_of(data: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(the inline environment as a v2 environment mapping, the job's environment variables)."""
    source = str(path)
    environment = data.get("environment")
    if isinstance(environment, str):
        reference = environment.removeprefix("azureml:").replace("@latest", "")
        raise InvalidDefinition(
            f"`environment` in {source} names the registered environment {environment!r}; "
            f"run with --env {reference} instead of --env-file"
        )
    if not isinstance(environment, dict):
        raise InvalidDefinition(
            f"`environment` in {source} must be an inline environment (image with conda_file, "
            "or build); add one, or run with --env NAME:VERSION"
        )
    variables = data.get("environment_variables") or {}
    if not isinstance(variables, dict):
        raise InvalidDefinition(
            f"`environment_variables` in {source} must be a mapping of names to values"
        )
    named = {"name": name_from_folder(Path(path.stem)), **environment}
    return named, {str(k): str(v) for k, v in variables.items()}
