"""A ready environment, held: what every command that runs code in an environment needs first
(``env exec``, runs, deployments).

The reference is taken before readiness is trusted: garbage collection removes nothing a live
process holds, and if it removed this materialization just before, the second look sees that
and builds again. Warm environments of the embedded registry are found with the standard
library only (see fastexec); anything else goes through ``ensure_built``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from kiln import dockerrun
from kiln.cache import MARKER, Cache
from kiln.errors import KilnError
from kiln.fastexec import Warm

if TYPE_CHECKING:
    from kiln.buildlog import Reporter
    from kiln.catalog import EnvironmentRecord
    from kiln.workspace import Workspace


@dataclass(frozen=True)
class Ready(Warm):
    """A ready materialization, held for a process until ``release()``."""

    hold: Path  # the reference file that keeps garbage collection away

    def release(self) -> None:
        self.hold.unlink(missing_ok=True)


def _warm(
    workspace: Workspace, cache: Cache, reference: str | None, in_image: bool
) -> Ready | None:
    from kiln.fastexec import find_warm

    if reference is None or not workspace.is_embedded:
        return None
    base = workspace.setting("base_image") if in_image else None  # images.default_base_image
    warm = find_warm(
        workspace.registry_file, cache.root, reference, in_image=in_image, default_base=base
    )
    return None if warm is None else Ready(**vars(warm), hold=Path())


def _built(
    workspace: Workspace,
    cache: Cache,
    record: EnvironmentRecord | None,
    reference: str | None,
    reporter: Reporter | None,
    lock_digest: str | None,
) -> Ready:
    from kiln import catalog
    from kiln.builds import ensure_built

    if record is None:
        assert reference is not None
        record = catalog.get(workspace, *catalog.parse_reference(reference))
    built = ensure_built(workspace, record, cache=cache, reporter=reporter, lock_digest=lock_digest)
    return Ready(
        key=built.key,
        path=built.path,
        interpreter=built.interpreter,
        builder=built.builder,
        variables=dict(record.definition.environment_variables),
        name=record.name,
        version=record.version,
        build_hash=record.build_hash,
        lock_digest=built.lock.lock_digest,
        platform=built.target.platform,
        activation=built.activation,
        docker_run=dockerrun.settings(record.definition.docker.model_dump()),
        hold=Path(),
    )


def held_if_warm(
    workspace: Workspace,
    reference: str,
    *,
    cache: Cache | None = None,
    pid: int | None = None,
    in_image: bool = False,
) -> Ready | None:
    """The fast path alone: ``reference`` already built on this machine, held; else None.
    ``in_image``: its image form (``images.image_record``: on the workspace's default base
    image when it names none), which is trusted as recorded: the engine is not asked whether
    it still has the image (``podman run`` by digest says so, and the run core then takes the
    full path: see ``compute.base.NotStarted``)."""
    cache = cache or Cache(workspace.cache_root)
    warm = _warm(workspace, cache, reference, in_image)
    if warm is None:
        return None
    hold = cache.add_reference(warm.key, pid)
    if (warm.path / MARKER).exists():
        return replace(warm, hold=hold)
    hold.unlink(missing_ok=True)
    return None


def ready_and_held(
    workspace: Workspace,
    *,
    reference: str | None = None,
    record: EnvironmentRecord | None = None,
    cache: Cache | None = None,
    reporter: Reporter | None = None,
    pid: int | None = None,
    lock_digest: str | None = None,
) -> Ready:
    """The ready materialization of ``record`` (or of ``reference``, NAME[:VERSION]), built if
    needed, with a reference held for ``pid`` (default: this process) until ``release()``.
    ``lock_digest`` asks for that stored lock rather than the newest."""
    cache = cache or Cache(workspace.cache_root)
    for _ in range(3):
        if record is None and reference is not None:
            warm = held_if_warm(workspace, reference, cache=cache, pid=pid)
            if warm is not None and lock_digest in (None, warm.lock_digest):
                return warm
            if warm is not None:
                warm.release()
        ready = _built(workspace, cache, record, reference, reporter, lock_digest)
        hold = cache.add_reference(ready.key, pid)
        if (ready.path / MARKER).exists():
            return replace(ready, hold=hold)
        hold.unlink(missing_ok=True)
    what = record.reference if record else reference
    raise KilnError(f"{what} keeps being removed from the cache while starting; retry")
