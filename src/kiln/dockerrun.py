"""Azure ML v1's docker run settings (``docker.shm_size``, ``docker.arguments``,
``docker.enabled``), applied when Kiln starts a container of an environment's image (a run on
the container target, a containerised deployment). Standard library only: the warm path reads
them from the stored definition.

The rule, as the README says it:

- ``shm_size`` becomes ``--shm-size`` (the definition's pattern is podman's); none means
  Azure ML's default, 2g (podman's own is 64m, too small for PyTorch's data loaders).
- ``arguments`` are passed to ``podman run`` when each item is one option: it starts with
  ``-`` and carries its value after ``=`` (``--ipc=host``, ``--ulimit=memlock=-1``), so no
  item can be read as the image or the command. Refused, naming the item: the options Kiln
  sets itself or relies on (``--rm``, ``--name``, ``--label``, ``--pull``, ``--workdir``,
  ``--entrypoint``, ``--detach``, ``--env``/``--env-file`` (use ``environment_variables``),
  ``--preserve-fds``, ``--replace``), a volume or mount onto ``/kiln`` (Kiln's paths), and for
  deployments ``--network`` (the worker serves on the supervisor's socket) and ``--publish``.
  A run's ``--network`` replaces Kiln's default, ``--network=host``.
- ``enabled`` is Azure ML v1's "run in docker" switch for targets that do not say: Kiln's
  target always says (``container`` runs in the image, ``local`` on this machine), so it is
  kept for Azure round trips and not applied. ``false`` is also the default of every definition
  and of every v1 file the SDK writes, so a message about it would show on nearly every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kiln.errors import InvalidRequest

AZURE_SHM_SIZE = "2g"
_KILN_OWNS = {
    "--rm": "Kiln removes the container itself",
    "--name": "Kiln names its containers to find them again",
    "--label": "Kiln finds its containers by label",
    "-l": "Kiln finds its containers by label",
    "--pull": "Kiln runs the image by digest",
    "--workdir": "Kiln sets the working directory",
    "-w": "Kiln sets the working directory",
    "--entrypoint": "Kiln runs the environment's Python",
    "--detach": "Kiln follows the container's output",
    "-d": "Kiln follows the container's output",
    "--env": "set variables in `environment_variables`",
    "-e": "set variables in `environment_variables`",
    "--env-file": "set variables in `environment_variables`",
    "--preserve-fds": "Kiln passes its own file descriptors",
    "--replace": "Kiln names its containers to find them again",
}
_DEPLOYMENT_OWNS = {
    "--network": "a deployment's workers serve on the supervisor's socket",
    "--net": "a deployment's workers serve on the supervisor's socket",
    "--publish": "a deployment's workers serve on the supervisor's socket",
    "-p": "a deployment's workers serve on the supervisor's socket",
}
_MOUNTS = {"--volume", "-v", "--mount"}


def settings(docker: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run settings of a stored definition's ``docker`` section (a dict)."""
    docker = docker or {}
    return {
        "enabled": bool(docker.get("enabled", False)),
        "shm_size": docker.get("shm_size"),
        "arguments": [str(item) for item in docker.get("arguments") or []],
    }


def _name(item: str) -> str:
    """The option an item names: ``--ipc`` of ``--ipc=host``, ``-v`` of ``-v/a:/b``."""
    if item.startswith("--"):
        return item.split("=", 1)[0]
    return item[:2]


def _mounts_kiln(item: str) -> bool:
    value = item.split("=", 1)[1] if "=" in item else item[2:]
    if item.startswith("--mount"):
        parts = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
        target = parts.get("target") or parts.get("destination") or parts.get("dst") or ""
    else:
        target = value.split(":")[1] if value.count(":") >= 1 else value
    return target.rstrip("/") == "/kiln" or target.startswith("/kiln/")


def _why_refused(item: str, deployment: bool) -> str | None:
    if not item.startswith("-") or item in ("-", "--"):
        return "each item must be one option starting with '-', its value after '=' (e.g. '--ipc=host')"
    name = _name(item)
    owned = {**_KILN_OWNS, **(_DEPLOYMENT_OWNS if deployment else {})}
    if name in owned:
        return f"{name} is Kiln's to set ({owned[name]})"
    if name in _MOUNTS and _mounts_kiln(item):
        return "/kiln is where Kiln mounts the run and its own package"
    return None


def podman_options(run: Mapping[str, Any], *, deployment: bool = False) -> list[str]:
    """``podman run`` options for the settings ``run`` (as ``settings`` returns them);
    InvalidRequest naming the first item the rule refuses."""
    options = [f"--shm-size={str(run.get('shm_size') or AZURE_SHM_SIZE).replace(' ', '')}"]
    for index, item in enumerate(run.get("arguments") or []):
        reason = _why_refused(item, deployment)
        if reason is not None:
            raise InvalidRequest(
                f"`docker.arguments[{index}]` {item!r}: {reason}; remove it from the "
                "environment's definition (register a new version)"
            )
        options.append(item)
    return options


def with_network(options: list[str], default: str = "--network=host") -> list[str]:
    """``options`` with Kiln's ``default`` network first unless they name their own."""
    named = any(_name(item) in ("--network", "--net") for item in options)
    return options if named else [default, *options]
