"""Deployments: a model (or several) served by a ``score.py`` in a registered environment, as a
background service that outlives the command that started it.

The workspace records what is wanted (the spec, with a generation number bumped by every
update) and what a *supervisor* process made of it (state, port, which generation serves). The
supervisor owns the listening socket, so the scoring URI never changes across updates; workers
run the scoring runtime on the environment's own interpreter, or (a ``container`` deployment)
in containers of the environment's image (``kiln.serving.containers``). A supervisor of this
machine that died is reported as ``Dead``, whatever the record last said.

The record lives in the workspace's ``DeploymentBook`` (kiln.serving.deploymentbook): the
registry, or a team server's. The supervisor, its folder and its log are on the machine that
created the deployment (for a server workspace, in this machine's local side of it), so
``update``, ``logs`` and ``delete`` work there; elsewhere they name that host.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kiln.compute.runfolder import local_side
from kiln.errors import Conflict, InvalidRequest, KilnError, NotFound
from kiln.runs import processes
from kiln.serving.deploymentbook import NewDeployment, deployment_book
from kiln.serving.models import check_name
from kiln.serving.specs import DEFAULT_MAX_BODY as DEFAULT_MAX_BODY  # its public name here
from kiln.serving.specs import DeploymentSpec as DeploymentSpec  # defined beside its defaults
from kiln.serving.specs import check_address, check_health_port
from kiln.serving.stopping import ORPHAN_GRACE_SECONDS, stop_service
from kiln.utctime import utc_text
from kiln.workspace import Workspace

if TYPE_CHECKING:
    from kiln.accounts import Actor

TRANSITIONING = "Transitioning"
HEALTHY = "Healthy"
UPDATING = "Updating"
FAILED = "Failed"
STOPPED = "Stopped"
DEAD = "Dead"
UNKNOWN = "Unknown"  # shown, never stored: a supervisor on another machine gone silent
HEARTBEAT_SECONDS = 30.0  # how often a supervisor says it still serves (the record's updated_at)
HEARTBEAT_VARIABLE = "KILN_DEPLOYMENT_HEARTBEAT_SECONDS"
SILENT_AFTER = 4 * HEARTBEAT_SECONDS


def heartbeat_seconds() -> float:
    """``KILN_DEPLOYMENT_HEARTBEAT_SECONDS``, kept between 0.2 and 30 s: any longer and other
    machines would show a serving deployment Unknown."""
    try:
        seconds = float(os.environ.get(HEARTBEAT_VARIABLE) or HEARTBEAT_SECONDS)
    except ValueError:
        seconds = HEARTBEAT_SECONDS
    return min(max(seconds, 0.2), HEARTBEAT_SECONDS)


LOG_FILE = "service.log"
PROCESS, CONTAINER = "process", "container"  # the kinds of deployment


@dataclass
class DeploymentRecord:
    name: str
    state: str
    spec: DeploymentSpec
    generation: int
    applied_generation: int
    host: str
    port: int | None
    supervisor: str | None
    error: str | None
    created_at: float
    updated_at: float
    kind: str = PROCESS
    image: str | None = None  # a container deployment's: the serving generation's image,
    image_digest: str | None = None  # its digest,
    containers: list[str] = field(default_factory=list)  # and its containers
    created_by: str | None = None  # None: created before Kiln recorded who

    @property
    def scoring_uri(self) -> str | None:
        return f"http://{self.host}:{self.port}/score" if self.port else None

    @property
    def liveness_uri(self) -> str | None:
        port = self.spec.health_port
        return f"http://{self.host}:{port}/" if port else None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "scoring_uri": self.scoring_uri,
            "liveness_uri": self.liveness_uri,
            "host": self.host,
            "port": self.port,
            "models": self.spec.models,
            "environment": f"{self.spec.env_name}:{self.spec.env_version}",
            "entry_script": self.spec.entry_script,
            "workers": self.spec.workers,
            "generation": self.generation,
            "serving_generation": self.applied_generation,
            "error": self.error,
            "kind": self.kind,
            "image": self.image,
            "image_digest": self.image_digest,
            "containers": self.containers,
            "created_at": utc_text(self.created_at),
            "updated_at": utc_text(self.updated_at),
            "created_by": self.created_by,
        }


def folder(workspace: Workspace, name: str) -> Path:
    """The deployment's folder on this machine: its log and its generations' files."""
    return local_side(workspace).root / "deployments" / name


def _record(row: dict[str, Any]) -> DeploymentRecord:
    spec = DeploymentSpec(**json.loads(row["spec"]))
    names = json.loads(row["containers"] or "[]")
    record = DeploymentRecord(**{**row, "spec": spec, "containers": names})
    if record.state in (FAILED, STOPPED):
        return record
    alive = processes.watcher_alive(record.supervisor)
    if alive is False:
        record.state = DEAD  # the process serving it is gone, whatever the record last said
    elif alive is None and time.time() - record.updated_at > SILENT_AFTER:
        # Elsewhere, so no process to look at: its heartbeat stopped (that machine may be down).
        record.state = UNKNOWN
        record.error = (
            f"no word from its supervisor on {processes.host_of(record.supervisor)} since "
            f"{utc_text(record.updated_at)}; that machine may be down or cut off"
        )
    return record


def get(workspace: Workspace, name: str) -> DeploymentRecord:
    row = deployment_book(workspace).get(name)
    if row is None:
        where = workspace.server_url or workspace.path
        raise NotFound(f"no deployment {name!r} in {where}; see `kiln deploy list`")
    return _record(row)


def list_deployments(workspace: Workspace) -> list[DeploymentRecord]:
    return [_record(r) for r in deployment_book(workspace).list()]


def set_fields(workspace: Workspace, name: str, **values: Any) -> None:
    deployment_book(workspace).set_fields(name, values)


def create(
    workspace: Workspace,
    name: str,
    spec: DeploymentSpec,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    container: bool = False,
    health_port: int | None = None,
    actor: Actor | None = None,
) -> DeploymentRecord:
    """Record the deployment and start its supervisor; returns at once (see ``wait``).
    ``container``: the workers run in containers of the environment's image; ``health_port``:
    a second port that answers liveness probes. ``actor``: who asks (a server's user; else the
    local user), recorded as ``created_by`` and audited."""
    check_name(name, field="name")
    check_address(host, port)
    if health_port is not None:
        check_health_port(host, port, health_port)
        spec = replace(spec, health_port=health_port)
    if spec.workers < 1:
        raise InvalidRequest(f"`workers`: {spec.workers} must be at least 1")
    if container:
        from kiln.serving.containers import check_can_start

        check_can_start(workspace, spec)
    kind = CONTAINER if container else PROCESS
    _replace_record(workspace, name, spec, host=host, port=port, kind=kind, actor=actor)
    place = folder(workspace, name)
    place.mkdir(parents=True, exist_ok=True)
    (place / LOG_FILE).unlink(missing_ok=True)
    _start_supervisor(workspace, name)
    return get(workspace, name)


def _replace_record(
    workspace: Workspace,
    name: str,
    spec: DeploymentSpec,
    *,
    host: str,
    port: int | None,
    kind: str,
    actor: Actor | None,
) -> None:
    """Record the deployment's first generation, replacing a stopped, failed or dead one."""
    book = deployment_book(workspace, actor)
    existing = book.get(name)
    if existing is not None:
        alive = processes.watcher_alive(existing["supervisor"]) is not False
        if alive and existing["state"] not in (FAILED, STOPPED):
            raise Conflict(
                f"deployment {name!r} exists and is running; use `kiln deploy update {name}` "
                f"or delete it first"
            )
    # The creating process's token until the supervisor's replaces it: a second `create`
    # meanwhile sees a live owner, not a dead record to replace.
    new = NewDeployment(
        name=name,
        state=TRANSITIONING,
        spec=json.dumps(asdict(spec)),
        host=host,
        port=port,
        supervisor=processes.watcher_token(),
        kind=kind,
    )
    book.create(new, replaces=None if existing is None else existing["supervisor"] or "")


def _start_supervisor(workspace: Workspace, name: str) -> None:
    token = processes.spawn_detached(
        [sys.executable, "-m", "kiln.serving.supervisor", _address(workspace), name],
        folder(workspace, name) / LOG_FILE,
    )
    set_fields(workspace, name, supervisor=token)


def _address(workspace: Workspace) -> str:
    """The workspace as the supervisor opens it: a server's URL, or the folder."""
    return workspace.server_url or str(workspace.path)


def _served_here(record: DeploymentRecord, action: str) -> None:
    """Refuse, naming the host, what only the machine whose supervisor serves it can do
    (``action``: "update it")."""
    if processes.watcher_alive(record.supervisor) is None:
        raise Conflict(
            f"deployment {record.name!r} is served from {processes.host_of(record.supervisor)}; "
            f"{action} there"
        )


def _live_supervisor(record: DeploymentRecord, action: str) -> int:
    """The pid of a deployment's supervisor that runs on this machine, or a clear error."""
    _served_here(record, action)
    alive = processes.watcher_alive(record.supervisor)
    pid = processes.pid_of(record.supervisor)
    if not alive or pid is None:
        raise Conflict(f"deployment {record.name!r} is {record.state.lower()}; create it again")
    return pid


def update(
    workspace: Workspace, name: str, spec: DeploymentSpec, *, actor: Actor | None = None
) -> DeploymentRecord:
    """Ask the supervisor to serve ``spec``: it starts new workers, checks them, then stops the
    old ones; the old ones keep serving if the new ones fail."""
    record = get(workspace, name)
    if record.state != HEALTHY:
        raise Conflict(
            f"deployment {name!r} is {record.state.lower()}; update it once it is healthy"
            + ("" if record.state not in (DEAD, FAILED, STOPPED) else ", or create it again")
        )
    pid = _live_supervisor(record, "update it")
    # Refused here, before the signal, for a caller who may not change it.
    deployment_book(workspace, actor).request_generation(name, json.dumps(asdict(spec)), UPDATING)
    os.kill(pid, signal.SIGHUP)
    return get(workspace, name)


def wait(
    workspace: Workspace, name: str, *, echo: IO[bytes] | None = None, timeout: float = 900.0
) -> DeploymentRecord:
    """Wait until the newest generation serves, or failed; streams the service log to ``echo``."""
    log = folder(workspace, name) / LOG_FILE
    offset = 0
    deadline = time.monotonic() + timeout
    while True:
        record = get(workspace, name)
        if echo is not None:
            offset = processes.copy_new_bytes(log, offset, echo)
        settled = record.state in (FAILED, DEAD, STOPPED) or (
            record.state == HEALTHY
            and (record.applied_generation == record.generation or record.error)
        )
        if settled:
            return record
        if time.monotonic() > deadline:
            raise KilnError(f"deployment {name!r} is still {record.state} after {timeout:.0f} s")
        time.sleep(0.1)


def delete(
    workspace: Workspace,
    name: str,
    *,
    timeout: float = 60.0,
    send: Callable[[int, int], None] = os.kill,
    actor: Actor | None = None,
) -> None:
    """Stop the service (its workers finish the requests in flight) and forget it, once every
    process of it is gone; a process that will not die is an error that keeps the record."""
    record = get(workspace, name)
    _served_here(record, "delete it")
    book = deployment_book(workspace, actor)
    book.check_may_change(name)  # before anything is stopped
    survivors = stop_service(record.supervisor, timeout=timeout, send=send)
    if survivors:
        pids = " ".join(str(pid) for pid in survivors)
        raise KilnError(
            f"deployment {name!r} is not deleted: its processes {pids} are still running "
            f"after SIGTERM and SIGKILL; stop them (`kill -9 {pids}`) and run "
            f"`kiln deploy delete {name}` again"
        )
    if record.kind == CONTAINER:
        from kiln.serving.containers import remove_leftovers

        remove_leftovers(workspace, name, grace=min(timeout, ORPHAN_GRACE_SECONDS))
    book.delete(name)
    shutil.rmtree(folder(workspace, name), ignore_errors=True)


def logs(workspace: Workspace, name: str) -> str:
    _served_here(get(workspace, name), "read its log")
    log = folder(workspace, name) / LOG_FILE
    return log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
