"""Deployment specs from what a face asks for: the one place where a new deployment's defaults
are filled in and an update keeps what it does not name. The CLI and the SDK both call it.

Light on purpose (nothing imported at module level but the standard library): the CLI reads
``DEFAULT_MAX_BODY`` while it builds its parser.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.workspace import Workspace

DEFAULT_ENVIRONMENT = "Kiln-inference-py311"  # when a request names none
DEFAULT_MAX_BODY = 100 * 1024 * 1024
# Workers are processes of the environment's Python, one request at a time each. CPU-bound
# scoring gains nothing past one per CPU; scoring that waits on I/O (a remote model, a
# database) uses a few per CPU (gunicorn suggests 2 x CPUs + 1). Four per CPU leaves that room
# and stops a typo (100000) from forking the machine to a halt; `allow_many_workers` overrides.
WORKERS_PER_CPU = 4
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def max_workers() -> int:
    """The most workers a deployment gets without ``allow_many_workers``."""
    return WORKERS_PER_CPU * (os.cpu_count() or 1)


@dataclass
class DeploymentSpec:
    """What to serve. Environment variables may hold ``${VAR}`` references; they are expanded
    from the supervisor's environment when workers start, and never stored expanded."""

    models: list[str]  # NAME:VERSION
    entry_script: str  # relative to the source snapshot
    source_snapshot: str
    env_name: str
    env_version: str
    workers: int = 1
    environment_variables: dict[str, str] = field(default_factory=dict)
    max_body_bytes: int = DEFAULT_MAX_BODY
    show_errors: bool = False
    # A second port for liveness probes (azmlinfsrv's --health_port), chosen at create and
    # kept by every update: the supervisor holds its socket as it holds the scoring one.
    health_port: int | None = None


@dataclass(frozen=True)
class SpecRequest:
    """What to serve. ``None`` (or no models) means the default for a new deployment, and what
    serves now for an update; ``environment_variables={}`` clears them."""

    models: Sequence[str] = ()  # NAME[:VERSION]
    entry_script: str | None = None  # relative to source_directory
    source_directory: str | os.PathLike[str] = "."
    environment: Any = None  # "NAME[:VERSION]", a definition or an SDK Environment
    workers: int | None = None
    environment_variables: Mapping[str, str] | None = None
    max_body_bytes: int | None = None
    show_errors: bool | None = None
    allow_many_workers: bool = False  # more than ``max_workers()``, on purpose


def check_settings(request: SpecRequest) -> None:
    """Refuse service settings that cannot work, before anything is snapshotted or recorded."""
    from kiln.environment.definition import ENV_VAR_PATTERN  # the rule environment YAML uses
    from kiln.errors import InvalidRequest
    from kiln.secrets import plain_secret_variable

    workers = request.workers
    if workers is not None and workers < 1:
        raise InvalidRequest(f"`workers`: {workers} must be at least 1")
    if workers is not None and workers > max_workers() and not request.allow_many_workers:
        raise InvalidRequest(
            f"`workers`: {workers} is more than {max_workers()} ({WORKERS_PER_CPU} per CPU "
            "on this machine); ask for fewer, or allow it with --allow-many-workers "
            "(SDK: allow_many_workers=True)"
        )
    for key, value in (request.environment_variables or {}).items():
        if not ENV_VAR_PATTERN.fullmatch(key):
            raise InvalidRequest(
                f"`environment_variables`: name {key!r} is invalid; use letters, digits and "
                "'_', not first a digit"
            )
        if problem := plain_secret_variable(key, value):  # never stored in the registry
            raise InvalidRequest(f"`environment_variables`: {problem}")
    if request.max_body_bytes is not None and request.max_body_bytes < 1:
        raise InvalidRequest(
            f"`max_body_bytes`: {request.max_body_bytes} must be positive (the largest request "
            "body; omit it for the default)"
        )


def address_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _is_hostname(host: str) -> bool:
    labels = host.removesuffix(".").split(".")
    return (
        0 < len(host) <= 253
        and all(_HOST_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()  # 256.1.1.1 is a bad address, not a name
    )


def check_address(
    host: str, port: int | None, *, try_listening: bool = True, field: str = "port"
) -> None:
    """Refuse a host that is neither an IP address nor a host name, a port out of range, and
    (``try_listening``) an address this machine cannot listen on: a port in use, another
    machine's address."""
    from kiln.errors import InvalidRequest

    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _is_hostname(host):
            raise InvalidRequest(
                f"`host`: {host!r} is neither an IP address nor a host name (e.g. 127.0.0.1, "
                "0.0.0.0 or localhost)"
            ) from None
    if port is not None and not 0 <= port <= 65535:
        raise InvalidRequest(
            f"`port`: {port} is not a port number (1-65535, or omit it for a free one)"
        )
    if not try_listening:
        return
    # Bind and let go: the supervisor binds again (a port taken in between still fails there).
    try:
        socket.create_server((host, port or 0), family=address_family(host)).close()
    except OSError as exc:
        raise InvalidRequest(_unusable_address(host, port, exc, field)) from None


def check_health_port(host: str, port: int | None, health_port: int) -> None:
    """The liveness port: a real port of its own (not 0, not the scoring port), free now."""
    from kiln.errors import InvalidRequest

    if not 1 <= health_port <= 65535 or health_port == port:
        raise InvalidRequest(
            f"`health_port`: {health_port} must be a port number (1-65535) other than the "
            "scoring port"
        )
    check_address(host, health_port, field="health_port")


def _unusable_address(host: str, port: int | None, exc: OSError, field: str) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return f"`{field}`: {port} on {host} is in use; pick another, or omit it for a free one"
    if isinstance(exc, socket.gaierror):
        return f"`host`: {host!r} does not resolve to an address; use an IP address"
    return (
        f"`host`: cannot listen on {host}:{port or 0} ({exc.strerror or exc}); use an address "
        "of this machine (127.0.0.1, or 0.0.0.0 for every interface)"
    )


def _model_references(workspace: Workspace, references: Sequence[str]) -> list[str]:
    """``NAME:VERSION`` of each registered model (``NAME`` alone: its newest version)."""
    from kiln.serving import models

    return [models.get(workspace, *models.parse_model_reference(r)).reference for r in references]


def _code_spec(
    workspace: Workspace, request: SpecRequest, model_references: Sequence[str], environment: Any
) -> DeploymentSpec:
    """A spec for the request's code and models, with the default service settings."""
    from kiln.compute.runfolder import local_side
    from kiln.errors import InvalidRequest
    from kiln.runs import snapshot
    from kiln.runs.submission import resolve_environment

    if not model_references:
        raise InvalidRequest("`models`: deploy at least one registered model")
    if not request.entry_script:
        raise InvalidRequest("`entry_script`: name the scoring script (e.g. score.py)")
    source = Path(request.source_directory).expanduser().absolute()
    entry = snapshot.script_path(source, request.entry_script)
    env = resolve_environment(workspace, environment, source)
    return DeploymentSpec(
        models=_model_references(workspace, model_references),
        entry_script=entry,
        # In this machine's store: the supervisor that serves it runs here (a server's
        # workspace too: its local side).
        source_snapshot=snapshot.take(local_side(workspace), source, entry),
        env_name=env.name,
        env_version=env.version,
    )


def _with_settings(
    spec: DeploymentSpec, request: SpecRequest, base: DeploymentSpec
) -> DeploymentSpec:
    variables = request.environment_variables
    return replace(
        spec,
        workers=base.workers if request.workers is None else request.workers,
        environment_variables=dict(base.environment_variables if variables is None else variables),
        max_body_bytes=base.max_body_bytes
        if request.max_body_bytes is None
        else request.max_body_bytes,
        show_errors=base.show_errors if request.show_errors is None else request.show_errors,
        health_port=base.health_port,
    )


def new_spec(workspace: Workspace, request: SpecRequest) -> DeploymentSpec:
    """The spec of a new deployment: the source folder snapshotted, the environment and the
    models resolved to versions, defaults for what the request leaves out."""
    check_settings(request)
    spec = _code_spec(
        workspace, request, request.models, request.environment or DEFAULT_ENVIRONMENT
    )
    return _with_settings(spec, request, spec)


def updated_spec(
    workspace: Workspace, base: DeploymentSpec, request: SpecRequest
) -> DeploymentSpec:
    """``base`` with what the request names replaced. New code (``entry_script``) is
    snapshotted again, in the request's environment or the current one; an environment alone
    runs the same code in another environment version. Host and port stay (the socket is kept)."""
    from kiln.errors import InvalidRequest
    from kiln.runs.submission import resolve_environment

    check_settings(request)
    spec = base
    if request.entry_script:
        environment = request.environment or f"{base.env_name}:{base.env_version}"
        spec = _code_spec(workspace, request, request.models or base.models, environment)
    else:
        if Path(request.source_directory) != Path():
            raise InvalidRequest("`source_directory` needs `entry_script` (the new code's entry)")
        if request.models:
            spec = replace(spec, models=_model_references(workspace, request.models))
        if request.environment:
            env = resolve_environment(workspace, request.environment)
            spec = replace(spec, env_name=env.name, env_version=env.version)
    return _with_settings(spec, request, base)
