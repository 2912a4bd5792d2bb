"""From a request (script, folder, arguments, environment, target) to a recorded run, and the
commands that act on runs afterwards (cancel, get; a dead watcher's run is settled by ``ending``).

A warm environment of the embedded registry is found with the standard library only, so the
foreground ``kiln run submit`` adds little to starting the script. Anything else (a cold
environment, an unregistered definition, PostgreSQL) takes the full path; the build then
happens inside the run, so a build failure ends the run Failed with the build log attached.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln import dockerrun
from kiln.accounts import local_actor
from kiln.compute import DEFAULT_TARGET
from kiln.compute.registry import target_of
from kiln.compute.runfolder import local_side, run_folder
from kiln.environment import ANONYMOUS_NAME
from kiln.errors import InvalidRequest, NotFound
from kiln.runs import processes, snapshot
from kiln.runs.ending import get, run_ref
from kiln.runs.sharedfiles import fetch_snapshot, share_snapshot
from kiln.runs.store import (
    QUEUED,
    RunRecord,
    RunStore,
    check_experiment_name,
    new_run_id,
)
from kiln.runs.targets import address_of

__all__ = [
    "RunRequest",
    "cancel",
    "get",
    "prepare",
    "reproduce_request",
    "resolve_environment",
    "start_detached",
]

if TYPE_CHECKING:
    from kiln.catalog import EnvironmentRecord
    from kiln.environment.definition import EnvironmentDefinition
    from kiln.ready import Ready
    from kiln.workspace import Workspace

DEFAULT_ENVIRONMENT = "Kiln-minimal-py311"
DEFAULT_EXPERIMENT = "default"


@dataclass
class RunRequest:
    script: str
    source_directory: Path = field(default_factory=Path.cwd)
    arguments: list[str] = field(default_factory=list)
    # None (the curated default), "NAME[:VERSION]", a definition, or an SDK Environment.
    environment: Any = None
    environment_source: Path | None = None  # where a definition's local files are
    compute_target: str = DEFAULT_TARGET
    experiment: str = DEFAULT_EXPERIMENT
    reproduces: str | None = None
    snapshot_digest: str | None = None  # reuse a stored snapshot (reproduce)
    snapshot_manifest: str | None = None  # and its manifest in a team server's store
    lock_digest: str | None = None  # install this stored lock, not the newest (reproduce)
    image_digest: str | None = None  # run in this exact image (reproduce of a container run)


@dataclass
class Prepared:
    record: RunRecord
    ready: Ready | None  # the environment, when it was already built and is held for the run


def _anonymous(
    workspace: Workspace, definition: EnvironmentDefinition, source: Path | None
) -> EnvironmentRecord:
    from kiln import catalog
    from kiln.environment.canonical import definition_digest

    digest = definition_digest(definition)
    tags = {**definition.tags, "kiln.anonymous_of": definition.name}
    anonymous = definition.model_copy(
        update={"name": ANONYMOUS_NAME, "version": digest[:16], "tags": tags}
    )
    return catalog.register(workspace, anonymous, source_dir=source).record


def resolve_environment(
    workspace: Workspace, environment: Any, source: Path | None = None
) -> EnvironmentRecord:
    """The registered version a run uses: a reference as given, a definition as the registered
    version with the same content under its name, or else as an anonymous version."""
    from kiln import catalog
    from kiln.environment.canonical import definition_digest
    from kiln.environment.definition import EnvironmentDefinition

    if environment is None:
        environment = DEFAULT_ENVIRONMENT
    if isinstance(environment, str):
        return catalog.get(workspace, *catalog.parse_reference(environment))
    definition = getattr(environment, "definition", environment)
    if not isinstance(definition, EnvironmentDefinition):
        raise InvalidRequest(
            f"`environment`: expected an Environment, a definition or 'NAME[:VERSION]', not "
            f"{type(environment).__name__}"
        )
    version = _registered_version(workspace, definition.name, definition_digest(definition))
    if version is not None:
        return catalog.get(workspace, definition.name, version)
    return _anonymous(workspace, definition, source)


def _registered_version(workspace: Workspace, name: str, digest: str) -> str | None:
    """The newest version of ``name`` (archived ones too) with the definition ``digest``."""
    if workspace.server_url is not None:
        from kiln.envlist import list_versions

        found = list_versions(
            workspace,
            all_versions=True,
            include_archived=True,
            name_contains=name,
            include_curated=False,
        )
        same = [s for s in found if s["name"] == name and s["definition_digest"] == digest]
        return str(same[-1]["version"]) if same else None
    from kiln.registry.queries import find_by_digest

    with workspace.engine.connect() as connection:
        row = find_by_digest(connection, name=name, definition_digest=digest)
    return None if row is None else row.version


def _warm(workspace: Workspace, environment: Any, in_image: bool) -> Ready | None:
    """The already built environment (its image form for a target that runs in the image),
    found and held without SQLAlchemy, or None."""
    from kiln.ready import held_if_warm

    if not isinstance(environment, str) or not workspace.is_embedded:
        return None
    return held_if_warm(workspace, environment, in_image=in_image)


def prepare(workspace: Workspace, request: RunRequest) -> Prepared:
    """Check the request, snapshot the folder and record the run (nothing runs yet)."""
    experiment = check_experiment_name(request.experiment)
    source = Path(request.source_directory).expanduser().absolute()
    if request.snapshot_digest is None:
        script = snapshot.script_path(source, request.script)
    else:  # a stored snapshot (reproduce): its script was checked when it was taken
        script = request.script
    arguments = [str(a) for a in request.arguments]
    store = RunStore(workspace)
    ready = None
    try:
        target = address_of(store, request.compute_target)
        in_image = target_of(target).in_image(target)
        if in_image:  # no engine to run the image: refused before anything is recorded
            from kiln.podman import require

            require(f"`compute_target` {target!r}: a run in the environment's image")
        ready = _warm(workspace, request.environment, in_image)
        if ready is not None and (
            request.lock_digest not in (None, ready.lock_digest)
            or (in_image and not ready.in_image)
        ):
            ready.release()
            ready = None
        if ready is not None:
            if in_image:
                dockerrun.podman_options(ready.docker_run)
            env_name, env_version, build_hash = ready.name, ready.version, ready.build_hash
        else:
            env = resolve_environment(workspace, request.environment, request.environment_source)
            if in_image:  # the build that runs, checked now: a run that cannot have one is refused
                from kiln.images import image_record

                env = image_record(workspace, env)
                # A docker.arguments item the container cannot take: refused now.
                dockerrun.podman_options(dockerrun.settings(env.definition.docker.model_dump()))
            env_name, env_version, build_hash = env.name, env.version, env.build_hash
        digest, manifest = request.snapshot_digest, request.snapshot_manifest
        if digest is None:
            digest = snapshot.take(local_side(workspace), source, script)
            manifest = share_snapshot(workspace, source, digest)  # a server's: for any machine
        record = RunRecord(
            id=new_run_id(experiment),
            experiment=experiment,
            status=QUEUED,
            script=script,
            arguments=arguments,
            snapshot_digest=digest,
            snapshot_manifest=manifest,
            env_name=env_name,
            env_version=env_version,
            build_hash=build_hash,
            compute_target=target,
            created_at=time.time(),
            watcher=processes.watcher_token(),
            reproduces=request.reproduces,
            lock_digest=request.lock_digest,
            image_digest=request.image_digest,
            created_by=local_actor(),  # a server records its token's user instead
        )
        store.insert(record)
    except BaseException:
        if ready is not None:
            ready.release()
        raise
    finally:
        store.close()
    run_folder(workspace, record.id).mkdir(parents=True, exist_ok=True)
    return Prepared(record, ready)


def start_detached(workspace: Workspace, prepared: Prepared) -> None:
    """Hand the run to a background watcher that outlives this process."""
    if prepared.ready is not None:
        prepared.ready.release()  # the watcher takes its own hold
    folder = run_folder(workspace, prepared.record.id)
    token = processes.spawn_detached(
        [sys.executable, "-m", "kiln.runs.watch", _address(workspace), prepared.record.id],
        folder / "watcher.log",
    )
    store = RunStore(workspace)
    try:
        store.update(prepared.record.id, watcher=token)
    finally:
        store.close()


def _address(workspace: Workspace) -> str:
    """How the watcher names the workspace: its folder, or its server's URL."""
    return workspace.server_url or str(workspace.path)


def cancel(workspace: Workspace, run_id: str, *, grace: float = 10.0) -> RunRecord:
    """Ask the run to stop and wait until it has: SIGTERM (or the target's equivalent), then
    a kill after ``grace`` seconds."""
    from kiln.runs.views import follow

    store = RunStore(workspace)
    try:
        record = store.get(run_id)
        if record.finished:
            raise InvalidRequest(f"run {run_id} already ended ({record.status}); nothing to cancel")
        store.update(run_id, cancel_requested=True)
        record = store.get(run_id)
    finally:
        store.close()
    if not processes.watched_elsewhere(record.watcher):
        target_of(record.compute_target).cancel(run_ref(record), grace=grace)
    # else its watcher, which asks the server every few seconds, stops it (execution.py)
    return follow(workspace, run_id, None, timeout=grace + 30)


def reproduce_request(workspace: Workspace, run_id: str) -> RunRequest:
    """The same snapshot, environment version and target as ``run_id``, as a new request."""
    store = RunStore(workspace)
    try:
        original = store.get(run_id)
    finally:
        store.close()
    if not fetch_snapshot(workspace, original):
        if workspace.server_url is not None:
            raise NotFound(
                f"the snapshot of run {run_id} is on the machine that ran it "
                f"({processes.host_of(original.watcher) or 'unknown'}) and not in the server's "
                "artifact store; reproduce it there"
            )
        raise NotFound(f"the snapshot of run {run_id} is no longer in the workspace")
    return RunRequest(
        script=original.script,
        arguments=list(original.arguments),
        environment=original.environment,
        compute_target=original.compute_target,
        experiment=original.experiment,
        reproduces=original.id,
        snapshot_digest=original.snapshot_digest,
        snapshot_manifest=original.snapshot_manifest,
        lock_digest=original.lock_digest,
        image_digest=original.image_digest,
    )
